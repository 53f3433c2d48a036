"""Each job's event log: every status and progress change, appended in the transaction that makes it,
so the events stream can replay a request from any point and nothing said to a client is ever lost. A job
that ends with a webhook URL gets its outbox row in the same transaction."""

from __future__ import annotations

from sqlalchemy import func, select

from ..db import Database, Job, JobEvent, Webhook, utcnow
from .model import TERMINAL, Event, JobStatus


def record(session, row: Job) -> None:
    """Log the job's state as it now is: status, and progress while it runs or the error once it ended."""
    data: dict = {"status": str(row.status)}
    if row.status == JobStatus.PROCESSING and row.progress_stage is not None:
        data["progress"] = {
            "stage": row.progress_stage,
            "step": row.progress_step,
            "total": row.progress_total,
            "percent": row.progress_percent,
        }
    if row.error_message is not None and row.status in TERMINAL:
        data["error"] = row.error_message
    session.add(JobEvent(job_id=row.id, data=data, created_at=utcnow()))


def record_end(session, row: Job) -> None:
    """The last event of a job, and the webhook it owes its client, if any."""
    record(session, row)
    if row.webhook_url is not None:
        session.add(Webhook(job_id=row.id, url=row.webhook_url, status="pending", attempts=0,
                            created_at=utcnow(), next_attempt_at=utcnow()))


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def after(self, job_id: str, after_id: int) -> list[Event]:
        """The job's events after `after_id`, oldest first."""
        with self.db.read() as session:
            rows = session.execute(
                select(JobEvent.id, JobEvent.data)
                .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
                .order_by(JobEvent.id)
            ).all()
        return [Event(id, job_id, data) for id, data in rows]

    def since(self, after_id: int, limit: int = 1000) -> list[Event]:
        """Every job's events after `after_id`, oldest first. Gap-free on SQLite, whose writers take turns
        (ids are given in commit order); the PostgreSQL feed asks per job instead."""
        with self.db.read() as session:
            rows = session.execute(
                select(JobEvent.id, JobEvent.job_id, JobEvent.data)
                .where(JobEvent.id > after_id)
                .order_by(JobEvent.id)
                .limit(limit)
            ).all()
        return [Event(id, job_id, data) for id, job_id, data in rows]

    def last_id(self) -> int:
        with self.db.read() as session:
            return session.scalars(select(func.coalesce(func.max(JobEvent.id), 0))).one()
