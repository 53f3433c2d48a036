"""`ltxserve fleet deploy|status|down`: the worker fleet on a Ray cluster (needs `pip install 'ltxserve[ray]'`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..fleet import APP_NAME
from .common import console, settings_with

fleet_app = typer.Typer(help="Run workers as a Ray Serve fleet that scales with the queue.", no_args_is_help=True)

RayAddress = Annotated[
    str, typer.Option("--ray-address", envvar="RAY_ADDRESS", help="The Ray cluster: head's HOST:PORT, or ray://...")
]
Name = Annotated[str, typer.Option("--name", help="The fleet's Ray Serve application name")]


def _store(config: Path | None = None):
    from ..roots.store import open_store

    settings = settings_with(config=config)
    return settings, open_store(settings)


def _ray(address: str):
    try:
        from ..fleet import deploy
    except ImportError:
        console.print("[red]Ray is not installed here: pip install 'ltxserve[ray]'[/red]")
        raise typer.Exit(2) from None
    deploy.connect(address)
    return deploy


@fleet_app.command("deploy")
def deploy_(
    ray_address: RayAddress,
    name: Name = APP_NAME,
    min_replicas: Annotated[int, typer.Option(help="Replicas kept running when idle (a warm pool)")] = 0,
    max_replicas: Annotated[int, typer.Option(help="The most replicas the queue may start")] = 4,
    gpus_per_replica: Annotated[float, typer.Option(help="GPUs each replica reserves")] = 1.0,
    cpus_per_replica: Annotated[float, typer.Option(help="CPUs each replica reserves")] = 1.0,
    jobs_per_replica: Annotated[int, typer.Option(help="Queued or running jobs one replica is sized for")] = 1,
    downscale_delay_s: Annotated[
        float, typer.Option(help="Idle seconds before a replica is stopped (loading a model takes minutes)")
    ] = 300.0,
    grace_period_s: Annotated[
        float, typer.Option(help="Seconds a stopping replica may take to finish its job; then the job is retried")
    ] = 300.0,
    config: Annotated[Path | None, typer.Option(help="TOML settings for the replicas (else the environment's)")] = None,
) -> None:
    """Deploy (or update) the fleet. Replicas get this environment's settings: database, storage, model."""
    from ..fleet.options import FleetOptions, replica_settings

    try:
        options = FleetOptions(name=name, min_replicas=min_replicas, max_replicas=max_replicas,
                               gpus_per_replica=gpus_per_replica, cpus_per_replica=cpus_per_replica,
                               jobs_per_replica=jobs_per_replica, downscale_delay_s=downscale_delay_s,
                               grace_period_s=grace_period_s)
        settings, store = _store(config)
        values = replica_settings(settings)
        ray_deploy = _ray(ray_address)
        with console.status(f"Deploying {name!r} on {ray_address}"):
            ray_deploy.deploy(store, options, values)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"Fleet {name!r} deployed: {min_replicas}–{max_replicas} replicas of {gpus_per_replica:g} GPU, "
        f"{jobs_per_replica} job(s) each, scale-down after {downscale_delay_s:g} s idle."
    )


@fleet_app.command("status")
def status(
    ray_address: RayAddress = "",
    name: Name = APP_NAME,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Replicas running, starting and targeted; the queue; live workers. From the job store, and from Ray
    too when --ray-address (or RAY_ADDRESS) is given."""
    _, store = _store()
    fleet = next((summary for summary in store.fleets.summaries(store.workers) if summary["name"] == name), None)
    demand = store.queue.demand()
    report: dict = {
        "fleet": fleet,
        "queue": {"queued": demand.queued, "running": demand.running, "lapsed_leases": demand.lapsed,
                  "oldest_queued_s": round(demand.oldest_queued_s, 3) if demand.oldest_queued_s is not None else None},
        "live_workers": store.workers.live(),
        "ray": None,
    }
    if ray_address:
        view = _ray(ray_address).ray_view(name)
        report["ray"] = {"status": view.status, "replica_states": view.replica_states, "message": view.message}
    if as_json:
        print(json.dumps(report))
        return
    if fleet is None:
        console.print(f"No fleet {name!r} in the job store (deploy one with `ltxserve fleet deploy`).")
    table = Table("", "value")
    summary = report["fleet"] or {}
    for label, key in (("replicas running", "running"), ("replicas starting", "starting"),
                       ("replicas draining", "draining"),
                       ("replicas targeted", "target"), ("policy reporting", "reporting"),
                       ("bounds", None)):
        if key is None:
            table.add_row(label, f"{summary.get('min_replicas', '-')}–{summary.get('max_replicas', '-')}")
        else:
            table.add_row(label, str(summary.get(key, "-")))
    queue = report["queue"]
    table.add_row("queued", str(queue["queued"]))
    table.add_row("running", str(queue["running"]))
    table.add_row("oldest queued", "-" if queue["oldest_queued_s"] is None else f"{queue['oldest_queued_s']:.1f} s")
    table.add_row("live workers (all)", str(report["live_workers"]))
    if report["ray"] is not None:
        table.add_row("Ray application", report["ray"]["status"])
        table.add_row("Ray replicas", " ".join(f"{k}={v}" for k, v in report["ray"]["replica_states"].items()) or "-")
    console.print(table)


@fleet_app.command("down")
def down(ray_address: RayAddress, name: Name = APP_NAME) -> None:
    """Remove the fleet: replicas finish their jobs within the grace period; queued requests wait for
    another worker."""
    _, store = _store()
    ray_deploy = _ray(ray_address)
    with console.status(f"Removing {name!r}"):
        ray_deploy.down(store, name)
    console.print(f"Fleet {name!r} removed.")
