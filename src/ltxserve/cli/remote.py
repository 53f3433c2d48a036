"""The CLI as a client of a server (`--server` or LTXSERVE_SERVER): `ltxserve generate --server ...` and
`ltxserve requests show|cancel|download`. Only `ltxserve.client` is used: no PyTorch, no server code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .common import console

STAGE_LABELS = {
    "encode_prompt": "Encoding the prompt",
    "stage1": "Denoising at half size",
    "upsample": "Upsampling latents x2",
    "stage2": "Refining at full size",
    "decode_audio": "Decoding audio",
    "decode_video": "Decoding and encoding video",
}

Server = Annotated[str | None, typer.Option("--server", envvar="LTXSERVE_SERVER", help="The server's base URL")]
ApiKey = Annotated[str | None, typer.Option("--api-key", envvar="LTXSERVE_API_KEY", help="Your API key",
                                            show_default=False)]
requests_app = typer.Typer(help="Your requests on a server (--server / LTXSERVE_SERVER).", no_args_is_help=True)


def _client(server: str | None, api_key: str | None):
    from ..client import Client

    try:
        return Client(server, api_key)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    from ..client import ApiError

    if isinstance(exc, ApiError):
        where = f" (request {exc.request_id})" if exc.request_id else ""
        console.print(f"[red]{exc.status} {exc.code}: {exc.message}{where}[/red]")
    else:
        console.print(f"[red]Cannot reach the server: {exc}[/red]")
    return typer.Exit(1)


def generate_remote(server: str | None, api_key: str | None, params: dict[str, Any], output: Path) -> None:
    """Submit, follow the event stream with a progress bar, write the MP4, and say what it cost. Ctrl-C asks
    whether to cancel the request on the server (else it goes on, and `ltxserve requests` finds it)."""
    import httpx

    from ..client import ApiError

    with _client(server, api_key) as client:
        try:
            request = client.submit(**params)
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None
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
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None
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
    import httpx
    from rich.table import Table

    from ..client import ApiError

    with _client(server, api_key) as client:
        try:
            records = list(client.requests(limit))
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None
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
    import httpx

    from ..client import ApiError

    with _client(server, api_key) as client:
        try:
            print(json.dumps(client.request(request_id).record().raw, indent=2))
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None


@requests_app.command("cancel")
def cancel(request_id: str, server: Server = None, api_key: ApiKey = None) -> None:
    """Cancel a queued or running request (not billed)."""
    import httpx

    from ..client import ApiError

    with _client(server, api_key) as client:
        try:
            status = client.request(request_id).cancel()
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None
        console.print(f"{request_id}: {status.status}")


@requests_app.command("download")
def download(
    request_id: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 file to write")] = Path("clip.mp4"),
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Write a finished request's MP4 (resumes if the connection breaks)."""
    import httpx

    from ..client import ApiError

    with _client(server, api_key) as client:
        try:
            client.request(request_id).download(output)
        except (ApiError, httpx.HTTPError) as exc:
            raise _fail(exc) from None
        console.print(f"Wrote {output}")
