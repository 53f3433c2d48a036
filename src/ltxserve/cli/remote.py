"""The CLI as a client of a server (`--server` or LTXSERVE_SERVER): `ltxserve generate --server ...` and
`ltxserve requests show|cancel|download`. Only `ltxserve.client` is used: no PyTorch, no server code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..order.vocabulary import STAGE_LABELS
from .common import console

if TYPE_CHECKING:
    from ..client import Client

Server = Annotated[str | None, typer.Option("--server", envvar="LTXSERVE_SERVER", help="The server's base URL")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="LTXSERVE_API_KEY", help="Your API key",
                                            show_default=False)]
requests_app = typer.Typer(help="Your requests on a server (--server / LTXSERVE_SERVER).", no_args_is_help=True)


@contextmanager
def _calling(server: str | None, api_key: str | None) -> Iterator[Client]:
    """A client for the command, its errors said in words: the server's answer, or why it was not reached."""
    import httpx

    from ..client import ApiError, Client

    try:
        client = Client(server, api_key)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with client:
        try:
            yield client
        except ApiError as exc:
            where = f" (request {exc.request_id})" if exc.request_id else ""
            console.print(f"[red]{exc.status} {exc.code}: {exc.message}{where}[/red]")
            raise typer.Exit(1) from None
        except httpx.HTTPError as exc:
            console.print(f"[red]Cannot reach the server: {exc}[/red]")
            raise typer.Exit(1) from None


def generate_remote(server: str | None, api_key: str | None, params: dict[str, Any], output: Path) -> None:
    """Submit, follow the event stream with a progress bar, write the MP4, and say what it cost. Ctrl-C asks
    whether to cancel the request on the server (else it goes on, and `ltxserve requests` finds it)."""
    with _calling(server, api_key) as client:
        request = client.submit(**params)
        console.print(f"Request {request.id} on {client.base_url}")
        columns = (TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                   TimeElapsedColumn())
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("Submitted", total=100)

                def show(update) -> None:
                    if update.status == "QUEUED":
                        position = f", position {update.queue_position}" if update.queue_position else ""
                        bar.update(task, description=f"Queued{position}")
                    elif update.progress is not None:
                        label = STAGE_LABELS.get(update.progress.stage, update.progress.stage)
                        step = f" {update.progress.step}/{update.progress.total}"
                        bar.update(task, description=label + step, completed=update.progress.percent or 0)
                    elif update.status == "COMPLETED":
                        bar.update(task, description="Done", completed=100)

                record = request.wait(on_progress=show)
            request.download(output)
        except KeyboardInterrupt:
            if typer.confirm(f"\nCancel request {request.id} on the server?", default=True):
                request.cancel()
                console.print(f"Canceled {request.id}; you are not charged.")
            else:
                console.print(f"It goes on: `ltxserve requests download {request.id} -o {output}` when done.")
            raise typer.Exit(130) from None
        console.print(f"Wrote {output}: seed {record.seed}, cost ${record.cost:.2f}, "
                      f"{record.metrics.get('remaining_credits')} credits left, request {request.id}.")


@requests_app.command("list")
def list_(
    server: Server = None,
    api_key: ApiKey = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines")] = False,
) -> None:
    """Your recent requests: status, cost, prompt."""
    from rich.table import Table

    with _calling(server, api_key) as client:
        records = list(client.requests(limit))
    if as_json:
        for record in records:
            print(json.dumps(record.raw))
        return
    table = Table("request", "status", "created", "cost", "seed", "size", "prompt")
    for record in records:
        given = record.raw.get("input") or {}
        table.add_row(record.request_id, record.status, str(record.raw.get("created_at", ""))[:19],
                      f"${record.cost:.2f}", str(record.seed or ""),
                      f"{given.get('resolution', '')} {given.get('duration', '')} s",
                      str(given.get("prompt", ""))[:50])
    console.print(table)


@requests_app.command("show")
def show(request_id: str, server: Server = None, api_key: ApiKey = None) -> None:
    """A request's whole record, as JSON."""
    with _calling(server, api_key) as client:
        print(json.dumps(client.request(request_id).record().raw, indent=2))


@requests_app.command("cancel")
def cancel(request_id: str, server: Server = None, api_key: ApiKey = None) -> None:
    """Cancel a queued or running request (not billed)."""
    with _calling(server, api_key) as client:
        status = client.request(request_id).cancel()
        console.print(f"{request_id}: {status.status}")


@requests_app.command("download")
def download(
    request_id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 file to write")] = Path("clip.mp4"),
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Write a finished request's MP4 (resumes if the connection breaks)."""
    with _calling(server, api_key) as client:
        client.request(request_id).download(output)
        console.print(f"Wrote {output}")
