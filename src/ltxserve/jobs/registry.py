"""The workers that could take a job: each registers once its model is loaded and heartbeats while idle."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, update

from ..db import Database, WorkerRow, utcnow


class WorkerRegistry:
    def __init__(self, db: Database, *, lease_s: float = 30.0) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_s)

    def register(self, worker_id: str, *, host: str, pid: int, model: str) -> None:
        with self.db.write() as session:
            session.merge(WorkerRow(id=worker_id, host=host, pid=pid, model=model, started_at=utcnow(),
                                    heartbeat_at=utcnow()))

    def heartbeat(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=utcnow()))

    def unregister(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))

    def live(self) -> int:
        """Workers heard from within one lease: the ones that could take a job now or soon."""
        with self.db.read() as session:
            return session.scalars(
                select(func.count()).select_from(WorkerRow).where(WorkerRow.heartbeat_at > utcnow() - self.lease)
            ).one()
