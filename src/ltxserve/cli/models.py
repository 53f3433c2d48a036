"""`ltxserve models list|pull`: the published LTX-2 weights ltxserve knows, which are on this machine, and
fetching them from the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..weights.catalog import RECOMMENDED_MODEL, CatalogError, CatalogModel, load_catalog
from ..weights.pull import Plan, PullError, endpoint, local_parts, plan, pull
from .common import console, settings_with

models_app = typer.Typer(
    help="Published LTX-2 weights: what ltxserve knows, what is on this machine, and fetching them.",
    no_args_is_help=True,
)

CatalogFile = Annotated[
    Path | None,
    typer.Option("--catalog", help="JSON file of more catalog entries (a mirror, another conversion); see README"),
]


def _catalog(path: Path | None) -> dict[str, CatalogModel]:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


@models_app.command("list")
def list_models(
    catalog: CatalogFile = None,
    remote: Annotated[bool, typer.Option("--remote", help="Ask the Hub (HF_ENDPOINT) for every part's size")] = False,
) -> None:
    """The models `ltxserve models pull` knows, part by part, and which are on this machine (under
    LTXSERVE_DATA_DIR/models)."""
    out = Console(soft_wrap=True)
    models_dir = settings_with().models_dir
    for model in _catalog(catalog).values():
        directory = models_dir / model.name
        held = local_parts(model, directory)
        count = sum(part.present for part in held.values())
        where = escape(str(directory))
        if count == len(model.parts):
            state = f"[green]present[/green] in {where}"
        elif count:
            state = f"[yellow]partial[/yellow]: {count} of {len(model.parts)} parts in {where}"
        else:
            state = f"missing; `ltxserve models pull {model.name}` puts it in {where}"
        recommended = " (recommended)" if model.name == RECOMMENDED_MODEL else ""
        title = f"[bold]{escape(model.name)}[/bold]{recommended}, LTX-{model.release}: {escape(model.summary)}"
        out.print(title, highlight=False)
        out.print(f"  {state}", highlight=False)
        hub: Plan | None = None
        if remote:
            try:
                hub = plan(model)
            except PullError as exc:
                out.print(f"  [yellow]sizes unknown: {escape(str(exc))}[/yellow]")
        sources = {part: f"{part.repo}@{part.revision[:12]}{', gated' if part.gated else ''}" for part in model.parts}
        label_width = max(len(part.label) for part in model.parts)
        source_width = max(map(len, sources.values()))
        license_width = max(len(part.license.name) for part in model.parts)
        for part in model.parts:
            here = "present" if held[part].present else "missing"
            size = hub.size(part) if hub else held[part].size if held[part].present else None
            out.print(
                f"    {part.label:<{label_width}}  {sources[part]:<{source_width}}  "
                f"{part.license.name:<{license_width}}  {here}{f'  {_size(size)}' if size is not None else ''}",
                highlight=False,
            )
        if hub:
            out.print(f"  {_size(hub.size())} in all on the Hub")


def _show_terms(model: CatalogModel) -> None:
    name = escape(model.name)
    console.print(f"[bold]{name}[/bold] is published under these terms, which ltxserve's license does not cover:")
    for license_, parts in model.licenses():
        repos = ", ".join(dict.fromkeys(part.repo for part in parts))
        console.print(f"  [bold]{license_.name}[/bold]: {license_.url}", highlight=False)
        console.print(f"    {escape(license_.summary)}")
        console.print(f"    for {', '.join(part.label for part in parts)} (from {repos})", highlight=False)
    for repo in dict.fromkeys(part.repo for part in model.parts if part.gated):
        console.print(
            f"  {repo} is gated: accept its terms at {endpoint()}/{repo} while signed in, and set HF_TOKEN.",
            highlight=False,
        )
    console.print("Read them in full at the addresses above. Downloading the weights binds you to them.")


@models_app.command("pull")
def pull_model(
    name: Annotated[str, typer.Argument(help="A model from `ltxserve models list`")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to put it (default: LTXSERVE_DATA_DIR/models/NAME)")
    ] = None,
    accept: Annotated[
        bool, typer.Option("--yes", "--accept-license", "-y", help="Accept the terms shown without asking (scripts)")
    ] = False,
    catalog: CatalogFile = None,
) -> None:
    """Download a model's weights from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN for gated repositories) into
    the directory `--model DIR` loads. Run it again to resume: finished files are kept."""
    models = _catalog(catalog)
    model = models.get(name)
    if model is None:
        console.print(f"[red]Unknown model {escape(repr(name))}.[/red] Known: {escape(', '.join(models))}")
        raise typer.Exit(2)
    target = (directory or settings_with().models_dir / name).expanduser()

    _show_terms(model)
    if not accept:
        try:
            agreed = typer.confirm("Do you accept these terms?", default=False, err=True)
        except typer.Abort:
            console.print("No answer (no terminal?): pass --accept-license to accept in a script. Nothing downloaded.")
            raise typer.Exit(1) from None
        if not agreed:
            console.print("Declined: nothing downloaded.")
            raise typer.Exit(1)

    try:
        with console.status(f"Listing the files at {endpoint()}"):
            planned = plan(model)
        console.print(f"{len(planned.files)} files, {_size(planned.size())}, into {target}", highlight=False)
        pull(planned, target)
    except PullError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except OSError as exc:
        console.print(f"[red]Cannot write the weights into {escape(str(target))}: {escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("Stopped. Files finished so far are kept: run the same command again to fetch the rest.")
        raise typer.Exit(130) from None
    console.print(
        f"Done. Use it with `ltxserve generate --model {target} \"...\"` or `LTXSERVE_MODEL={target} ltxserve serve`.",
        highlight=False,
    )
