"""The `ltxserve` command."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..order.vocabulary import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_FPS,
    DEFAULT_RESOLUTION,
    DURATIONS,
    FPS,
    RESOLUTIONS,
    STAGE_LABELS,
    choices,
)
from . import fleet, keys, models, remote, server
from .common import console, settings_with

app = typer.Typer(help="ltxserve: LTX-2 fast text/image-to-video with synchronized audio.", no_args_is_help=True)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(keys.credits_app, name="credits")
app.add_typer(fleet.fleet_app, name="fleet")
app.add_typer(remote.requests_app, name="requests")
app.add_typer(models.models_app, name="models")
app.command()(server.serve)
app.command()(server.worker)
app.command()(server.demo)


@app.callback()
def _root() -> None:
    """ltxserve: LTX-2 fast text/image-to-video with synchronized audio."""

@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the clip shows (and sounds like)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 file to write")] = Path("clip.mp4"),
    duration: Annotated[int, typer.Option(help=f"Seconds: {choices(DURATIONS)}")] = DEFAULT_DURATION,
    resolution: Annotated[str, typer.Option(help=choices(RESOLUTIONS))] = DEFAULT_RESOLUTION,
    aspect_ratio: Annotated[str, typer.Option(help=choices(ASPECT_RATIOS))] = DEFAULT_ASPECT_RATIO,
    fps: Annotated[int, typer.Option(help=choices(FPS))] = DEFAULT_FPS,
    seed: Annotated[int | None, typer.Option(help="Fixed seed for a repeatable clip")] = None,
    image: Annotated[str | None, typer.Option(help="First frame: a file path or an http(s) URL")] = None,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Add an audio track")] = True,
    model: Annotated[str | None, typer.Option(help="'tiny' or a directory of LTX-2 weights")] = None,
    server: remote.Server = None,
    api_key: remote.ApiKey = None,
) -> None:
    """Generate one clip and write it as an MP4 (H.264 + AAC): on a server with --server (or LTXSERVE_SERVER),
    else on this machine's engine."""
    if server:
        if image is not None and "://" not in image:
            image = _data_uri(Path(image))
        params = {"prompt": prompt, "duration": duration, "resolution": resolution, "aspect_ratio": aspect_ratio,
                  "fps": fps, "generate_audio": audio, "seed": seed, "image": image}
        remote.generate_remote(server, api_key, {k: v for k, v in params.items() if v is not None}, output)
        return
    # Imported here: they load PyTorch, which the key and server commands should not wait for.
    from ..api.schemas import parse_request
    from ..errors import InvalidRequest
    from ..media.images import decode_image, load_image
    from ..net.safe_fetch import SafeFetcher
    from ..order import ImageInput
    from ..roots.worker import load_engine

    settings = settings_with(model=model)
    local_image = image is not None and "://" not in image
    body = {
        "prompt": prompt,
        "duration": duration,
        "resolution": resolution,
        "aspect_ratio": aspect_ratio,
        "fps": fps,
        "generate_audio": audio,
        "seed": seed,
        "image": None if local_image else image,
    }
    try:
        request = parse_request({key: value for key, value in body.items() if value is not None})
        picture = None
        if image is not None and local_image:
            picture = decode_image(Path(image).read_bytes(), settings.image_max_pixels)
        elif request.image is not None:
            picture = load_image(request.image, SafeFetcher.for_images(settings), settings.image_max_pixels)
    except InvalidRequest as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    except OSError as exc:
        console.print(f"[red]Cannot read the image: {exc}[/red]")
        raise typer.Exit(2) from None

    first = None if picture is None else ImageInput("image", picture.width, picture.height)
    order = request.to_order(price=0, image=first)
    images = {first.name: picture} if first is not None and picture is not None else None
    started = time.perf_counter()
    with console.status(f"Loading model {settings.model!r}"):
        engine = load_engine(settings)
    loaded = time.perf_counter()

    columns = (TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("Starting", total=1)

        def on_progress(event) -> None:
            label = STAGE_LABELS.get(event.stage, event.stage)
            bar.update(task, description=label, completed=event.step, total=event.total)

        result = engine.generate(order, output, progress=on_progress, images=images)
    done = time.perf_counter()
    audio_note = f", AAC {result.audio_sample_rate} Hz" if result.audio_sample_rate else ", no audio"
    console.print(
        f"Wrote {output} — {result.width}x{result.height}, {result.num_frames} frames at {result.fps} fps "
        f"({result.duration:g} s){audio_note}, seed {result.seed}. "
        f"Model load {loaded - started:.1f} s, generation {done - loaded:.1f} s."
    )


def _data_uri(path: Path) -> str:
    import base64
    import mimetypes

    try:
        data = path.read_bytes()
    except OSError as exc:
        console.print(f"[red]Cannot read the image: {exc}[/red]")
        raise typer.Exit(2) from None
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def main() -> None:
    # No hub access is needed or wanted: real weights are read from a local directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()
