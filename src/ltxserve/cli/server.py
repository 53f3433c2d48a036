"""`ltxserve serve`, `ltxserve worker` and `ltxserve demo`."""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from ..order.vocabulary import DEFAULT_DURATION, DEFAULT_RESOLUTION, DURATIONS, RESOLUTIONS, choices
from .common import console, settings_with


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000)")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Workers in this process: 1, or 0 to rely on `ltxserve worker`")
    ] = None,
) -> None:
    """Run the HTTP API (with one embedded worker, unless told otherwise)."""
    import uvicorn

    from ..logs import configure_logging
    from ..roots.server import server_app

    settings = settings_with(host=host, port=port, embedded_workers=workers)
    configure_logging(settings.log_level)
    uvicorn.run(server_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)


def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics on this port (0: any free port)")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port")] = "127.0.0.1",
    supervised: Annotated[str | None, typer.Option(hidden=True, help="Set by `ltxserve serve` for its worker")] = None,
) -> None:
    """Run one worker process: it takes jobs from the same database as the servers."""
    from ..roots.worker import run_worker_process
    from ..workers.channel import WorkerSide
    from ..workers.metrics import WorkerMetrics

    link = WorkerSide.attach(supervised) if supervised else None
    metrics = WorkerMetrics()
    if metrics_port is not None:
        port = metrics.serve(metrics_port, metrics_host)
        console.print(f"Worker metrics at http://{metrics_host}:{port}/metrics")
    run_worker_process(settings_with(), link, metrics)


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 file to write")] = Path("clip.mp4"),
    prompt: Annotated[str, typer.Option(help="What the clip shows")] = "a red fox running through fresh snow, birdsong",
    duration: Annotated[int, typer.Option(help=f"Seconds: {choices(DURATIONS)}")] = DEFAULT_DURATION,
    resolution: Annotated[str, typer.Option(help=choices(RESOLUTIONS))] = DEFAULT_RESOLUTION,
) -> None:
    """Start the server on a free port, make one real API request as a client would, save the MP4, stop."""
    import requests
    import uvicorn

    from ..billing.keys import create_key, list_keys, revoke_key
    from ..logs import configure_logging
    from ..roots.server import server_app
    from ..roots.store import open_store

    settings = settings_with(embedded_workers=1, log_level="WARNING")
    configure_logging(settings.log_level)
    db = open_store(settings).db
    # One demo key at a time: the previous run's key is revoked, its secret having been discarded.
    for info, _ in list_keys(db):
        if info.name == "demo" and info.revoked_at is None:
            revoke_key(db, info.id)
    key = create_key(db, name="demo", credits=Decimal(5), scopes=["ltx-2-fast", "4k"]).secret
    db.dispose()

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(server_app(settings), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        with console.status(f"Server at {base}: loading the {settings.model!r} model"):
            _wait_ready(base)
        payload: dict[str, str | int | bool] = {
            "prompt": prompt, "duration": duration, "resolution": resolution, "generate_audio": True
        }
        console.print(f"POST {base}/v1/ltx-2-fast {payload}")
        started = time.perf_counter()
        with console.status("Generating"):
            response = requests.post(f"{base}/v1/ltx-2-fast", json=payload, headers={"x-api-key": key}, timeout=900)
        if response.status_code != 200:
            console.print(f"[red]{response.status_code}: {response.text}[/red]")
            raise typer.Exit(1)
        output.write_bytes(response.content)
        console.print(
            f"200 {response.headers['content-type']}, {len(response.content)} bytes in "
            f"{time.perf_counter() - started:.1f} s → {output}\n"
            f"  x-cost ${response.headers['x-cost']}, x-remaining-credits ${response.headers['x-remaining-credits']}, "
            f"x-generation-time {response.headers['x-generation-time']} s, x-seed-value "
            f"{response.headers['x-seed-value']}, x-request-id {response.headers['x-request-id']}\n"
            "Run your own server with `ltxserve serve` and make keys with `ltxserve keys create --credits 10`."
        )
    finally:
        server.should_exit = True
        thread.join(60)


def _wait_ready(base: str, timeout_s: float = 600) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base} was not ready within {timeout_s:g} s")
