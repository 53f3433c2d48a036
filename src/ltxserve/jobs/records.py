"""Reading requests back, and the retention of what they leave: clips expire after LTXSERVE_RESULT_TTL_S,
records (the job, its events, its webhook attempts) after LTXSERVE_RECORD_TTL_S. The ledger stays."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update

from ..billing import ledger
from ..db import ApiKey, Database, Job, ServerSecret, WorkerRow, utcnow
from .model import TERMINAL, JobStatus, JobView


class Records:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, job_id: str) -> JobView | None:
        with self.db.read() as session:
            row = session.get(Job, job_id)
            return JobView.of(row) if row is not None else None

    def page(self, key_id: str, limit: int, after: str | None = None) -> list[JobView] | None:
        """The key's requests, newest first: `limit` of them, those older than its request `after` if given.
        None if `after` is not one of the key's requests."""
        query = select(Job).where(Job.key_id == key_id)
        with self.db.read() as session:
            if after is not None:
                last = session.execute(select(Job.created_at).where(Job.id == after, Job.key_id == key_id)).first()
                if last is None:
                    return None
                query = query.where(or_(Job.created_at < last.created_at,
                                        and_(Job.created_at == last.created_at, Job.id < after)))
            rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit))
            return [JobView.of(row) for row in rows]

    def with_balance(self, job_id: str, key_id: str) -> tuple[JobView, int] | None:
        """The key's job and the key's balance, in one query (what a status poll answers)."""
        with self.db.read() as session:
            found = session.execute(
                select(Job, ApiKey.balance).join(ApiKey, ApiKey.id == Job.key_id)
                .where(Job.id == job_id, Job.key_id == key_id)
            ).first()
            return (JobView.of(found[0]), found[1]) if found is not None else None

    def server_secret(self, name: str) -> str:
        """A secret every server process shares (made by a migration), e.g. the one that signs output links."""
        with self.db.read() as session:
            return session.scalars(select(ServerSecret.value).where(ServerSecret.name == name)).one()

    def captured_total(self) -> int:
        with self.db.read() as session:
            return ledger.captured_total(session)

    def cold_starts(self, bounds: tuple[float, ...]) -> tuple[list[int], int, float]:
        """Of the requests on record that waited for a worker to start (a fleet at zero, a worker loading):
        how many waited at most each bound (cumulative), how many in all, and the seconds summed."""
        waited = Job.cold_start_s
        with self.db.read() as session:
            row = session.execute(
                select(
                    *(func.count().filter(waited <= bound) for bound in bounds),
                    func.count(waited),
                    func.coalesce(func.sum(waited), 0.0),
                )
            ).one()
        return list(row[: len(bounds)]), row[len(bounds)], float(row[len(bounds) + 1])

    # --- retention -------------------------------------------------------------------------------

    def expirable(self, finished_before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(job id, result key) of stored results older than the cut-off."""
        with self.db.read() as session:
            return [
                (job_id, result_key or "")
                for job_id, result_key in session.execute(
                    select(Job.id, Job.result_key)
                    .where(Job.status == JobStatus.COMPLETED, Job.result_key.is_not(None),
                           Job.finished_at < finished_before)
                    .limit(limit)
                )
            ]

    def mark_expired(self, job_id: str) -> None:
        """Record that the result is gone (deleted from storage first, so a crash between leaves no orphan)."""
        with self.db.write() as session:
            session.execute(update(Job).where(Job.id == job_id).values(result_key=None, result_expired_at=utcnow()))

    def sweepable(self, finished_before: datetime, limit: int = 500) -> list[tuple[str, str | None]]:
        """(job id, result key or None) of requests that ended before the cut-off."""
        with self.db.read() as session:
            return [
                (job_id, result_key)
                for job_id, result_key in session.execute(
                    select(Job.id, Job.result_key)
                    .where(Job.status.in_(TERMINAL), Job.finished_at < finished_before)
                    .limit(limit)
                )
            ]

    def sweep(self, job_ids: list[str], workers_seen_before: datetime) -> None:
        """Delete these requests' records: the job, its events, its webhook outbox and attempts (their rows
        cascade). The ledger keeps its entries, which name the request. Workers not heard from since the
        cut-off go too."""
        with self.db.write() as session:
            session.execute(delete(Job).where(Job.id.in_(job_ids), Job.status.in_(TERMINAL)))
            session.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < workers_seen_before))
