"""Worker fleets that Ray Serve runs (`ltxserve fleet deploy`), as the job store knows them: their bounds,
and what each one's autoscaling policy last reported. Ray decides where replicas run; this is how every API
process learns that a fleet exists and will start a worker for a request that finds none live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from ..db import Database, Fleet, utcnow
from .registry import WorkerRegistry


@dataclass(frozen=True)
class FleetView:
    name: str
    min_replicas: int
    max_replicas: int
    jobs_per_replica: int
    deployed_at: datetime
    target: int
    replicas: int
    reported_at: datetime | None

    def reporting(self, within_s: float, now: datetime | None = None) -> bool:
        """Its policy reported lately: the Ray cluster runs it, and it would scale for a new request."""
        now = now or utcnow()
        return self.reported_at is not None and now - self.reported_at <= timedelta(seconds=within_s)

    def as_json(self, running: int, draining: int = 0) -> dict:
        """`running`: its replicas live in the job store (model loaded), of which `draining` take no new job;
        the rest of the replicas Ray has are starting."""
        return {
            "name": self.name,
            "reporting": self.reporting(Fleets.REPORT_WITHIN_S),
            "reported_at": self.reported_at.isoformat() if self.reported_at else None,
            "target": self.target,
            "running": running,
            "starting": max(self.replicas - running, 0),
            "draining": draining,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "jobs_per_replica": self.jobs_per_replica,
        }


class Fleets:
    # The policy reports every second or so; a fleet silent for this long is taken to be gone (its Ray
    # cluster down, or the application deleted without `ltxserve fleet down`).
    REPORT_WITHIN_S = 30.0

    def __init__(self, db: Database) -> None:
        self.db = db

    def deploy(self, name: str, *, min_replicas: int, max_replicas: int, jobs_per_replica: int) -> None:
        """Record a fleet's bounds. A redeployed fleet keeps its last report: the API goes on accepting
        requests while Serve replaces its policy."""
        with self.db.write() as session:
            row = session.get(Fleet, name, with_for_update=True)
            if row is None:
                row = Fleet(name=name, target=0, replicas=0, reported_at=None)
                session.add(row)
            row.min_replicas, row.max_replicas, row.jobs_per_replica = min_replicas, max_replicas, jobs_per_replica
            row.deployed_at = utcnow()

    def report(self, name: str, *, target: int, replicas: int) -> None:
        with self.db.write() as session:
            session.execute(
                update(Fleet).where(Fleet.name == name).values(target=target, replicas=replicas, reported_at=utcnow())
            )

    def remove(self, name: str) -> None:
        with self.db.write() as session:
            session.execute(delete(Fleet).where(Fleet.name == name))

    def get(self, name: str) -> FleetView | None:
        with self.db.read() as session:
            row = session.get(Fleet, name)
            return _view(row) if row is not None else None

    def all(self) -> list[FleetView]:
        with self.db.read() as session:
            return [_view(row) for row in session.scalars(select(Fleet).order_by(Fleet.name))]

    def summaries(self, workers: WorkerRegistry) -> list[dict]:
        """Each fleet as `as_json` tells it, its replicas counted in the worker registry."""
        return [fleet.as_json(workers.live(fleet.name), workers.draining(fleet.name).workers) for fleet in self.all()]

    def any_reporting(self) -> bool:
        now = utcnow()
        return any(fleet.reporting(self.REPORT_WITHIN_S, now) for fleet in self.all())


def _view(row: Fleet) -> FleetView:
    return FleetView(**{name: getattr(row, name) for name in FleetView.__dataclass_fields__})
