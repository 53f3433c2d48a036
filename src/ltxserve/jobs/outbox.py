"""The webhook outbox: rows written by the transaction that ends a job (see eventlog.record_end), claimed
one attempt at a time by whichever server process is free, and every attempt recorded.

An attempt is claimed with a conditional update that moves the row's next attempt past the delivery's
time limit, so two processes never send the same attempt, and one that dies mid-attempt leaves the row
to be tried again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..db import Database, Webhook, WebhookAttempt, utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Delivery:
    """One claimed attempt."""

    job_id: str
    url: str
    attempt: int
    created_at: datetime


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, limit: int) -> list[str]:
        """Job ids whose next attempt is due, longest-waiting first."""
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(Webhook.job_id)
                    .where(Webhook.status == PENDING, Webhook.next_attempt_at <= utcnow())
                    .order_by(Webhook.next_attempt_at)
                    .limit(limit)
                )
            )

    def claim(self, job_id: str, hold: timedelta) -> Delivery | None:
        """The job's next attempt, if it is still due and nobody else took it; held for `hold`."""
        now = utcnow()
        with self.db.write() as session:
            row = session.scalars(
                select(Webhook)
                .where(Webhook.job_id == job_id, Webhook.status == PENDING, Webhook.next_attempt_at <= now)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            row.attempts += 1
            row.next_attempt_at = now + hold
            return Delivery(row.job_id, row.url, row.attempts, row.created_at)

    def record(self, delivery: Delivery, *, status: str, next_at: datetime, status_code: int | None,
               error: str | None, seconds: float) -> None:
        with self.db.write() as session:
            session.add(WebhookAttempt(job_id=delivery.job_id, attempt=delivery.attempt, at=utcnow(),
                                       status_code=status_code, error=error, seconds=seconds))
            session.execute(
                update(Webhook)
                .where(Webhook.job_id == delivery.job_id, Webhook.attempts == delivery.attempt)
                .values(status=status, next_attempt_at=next_at)
            )
