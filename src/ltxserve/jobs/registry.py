"""The workers that could take a job: each registers once its model is loaded and heartbeats while idle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, update

from ..db import Database, Job, WorkerRow, utcnow
from .model import JobStatus


@dataclass(frozen=True)
class Draining:
    workers: int
    jobs: int  # running on those workers


class WorkerRegistry:
    def __init__(self, db: Database, *, lease_s: float = 30.0) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_s)

    def register(self, worker_id: str, *, host: str, pid: int, model: str, fleet: str | None = None) -> None:
        with self.db.write() as session:
            session.merge(WorkerRow(id=worker_id, host=host, pid=pid, model=model, started_at=utcnow(),
                                    heartbeat_at=utcnow(), fleet=fleet))

    def heartbeat(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=utcnow()))

    def set_draining(self, worker_id: str, draining: bool) -> bool:
        """False if the worker is not registered (yet)."""
        with self.db.write() as session:
            done = session.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(draining=draining))
            return cast(CursorResult, done).rowcount == 1

    def draining(self, fleet: str | None = None) -> Draining:
        """Live workers that take no new job (their node is being drained), and the jobs they still hold."""
        draining = self._live(fleet).where(WorkerRow.draining.is_(True))
        with self.db.read() as session:
            workers = session.scalars(select(func.count()).select_from(draining.subquery())).one()
            held = session.scalars(
                select(func.count()).select_from(Job).where(
                    Job.status == JobStatus.PROCESSING, Job.lease_owner.in_(draining)
                )
            ).one() if workers else 0
        return Draining(workers, held)

    def unregister(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))

    def live(self, fleet: str | None = None) -> int:
        """Workers heard from within one lease: the ones that could take a job now or soon. With `fleet`,
        only that fleet's replicas."""
        with self.db.read() as session:
            return session.scalars(select(func.count()).select_from(self._live(fleet).subquery())).one()

    def _live(self, fleet: str | None):
        query = select(WorkerRow.id).where(WorkerRow.heartbeat_at > utcnow() - self.lease)
        return query.where(WorkerRow.fleet == fleet) if fleet is not None else query
