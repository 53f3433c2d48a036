"""Delivering webhooks from the outbox: at least once, signed, retried with exponential backoff.

A job that ends with a webhook URL gets its outbox row in the same transaction (see the job store), so
a crash never loses a delivery. Any server process may run the dispatcher: an attempt is claimed with a
conditional update that moves the row's next attempt past the delivery's time limit, so two processes
never send the same attempt, and one that dies mid-attempt leaves the row to be tried again.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from ..billing.keys import webhook_secret
from ..db import Database, Webhook, WebhookAttempt, utcnow
from ..jobs import JobStore, JobView
from ..net.safe_fetch import FetchFailed, FetchRefused, SafeFetcher
from . import signing

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 10.0
    backoff_s: float = 2.0  # before the second attempt; doubled for each one after
    backoff_max_s: float = 300.0
    window_s: float = 3600.0  # no attempt starts later than this after the job ended
    # Each wait is stretched by up to this fraction, at random: a receiver that comes back after an outage
    # is not hit by every retry at the same instant.
    jitter: float = 0.25

    def delay(self, attempts: int) -> float:
        return min(self.backoff_s * 2 ** (attempts - 1), self.backoff_max_s) * (1 + random.uniform(0, self.jitter))


class WebhookDispatcher:
    """Sends due deliveries on a pool of its own: a slow receiver holds one of its threads for up to the
    delivery timeout, never a thread that answers API requests, and never the deliveries to other receivers."""

    def __init__(self, db: Database, store: JobStore, sender: SafeFetcher, payload: Callable[[JobView], dict],
                 policy: RetryPolicy, concurrency: int = 16) -> None:
        self.db = db
        self.store = store
        self.sender = sender
        self.payload = payload
        self.policy = policy
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ltxserve-webhook")
        self._concurrency = concurrency

    def run_due(self, limit: int | None = None) -> int:
        """Make every attempt that is due now, at once; returns how many were made."""
        with self.db.read() as session:
            due = session.scalars(
                select(Webhook.job_id)
                .where(Webhook.status == PENDING, Webhook.next_attempt_at <= utcnow())
                .order_by(Webhook.next_attempt_at)
                .limit(limit or self._concurrency)
            ).all()
        return sum(self._pool.map(self._attempt, due))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _claim(self, job_id: str) -> Webhook | None:
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
            row.next_attempt_at = now + timedelta(seconds=self.policy.timeout_s + 30)
            return row

    def _attempt(self, job_id: str) -> bool:
        row = self._claim(job_id)
        if row is None:
            return False
        job = self.store.get(job_id)
        body = json.dumps(self.payload(job), separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "ltxserve-webhooks",
            "ltxserve-delivery": f"{job_id}/{row.attempts}",
            signing.HEADER: signing.sign(webhook_secret(self.db, job.key_id), body),
        }
        started = time.perf_counter()
        status_code, error = None, None
        try:
            status_code = self.sender.post(row.url, body, headers, timeout_s=self.policy.timeout_s)
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except (FetchRefused, FetchFailed) as exc:
            error = str(exc)
        seconds = time.perf_counter() - started
        self._record(row, status_code, error, seconds)
        return True

    def _record(self, claimed: Webhook, status_code: int | None, error: str | None, seconds: float) -> None:
        now = utcnow()
        if error is None:
            status, next_at = DELIVERED, now
        else:
            next_at = now + timedelta(seconds=self.policy.delay(claimed.attempts))
            expired = next_at - claimed.created_at > timedelta(seconds=self.policy.window_s)
            status = FAILED if expired else PENDING
        with self.db.write() as session:
            session.add(WebhookAttempt(job_id=claimed.job_id, attempt=claimed.attempts, at=now,
                                       status_code=status_code, error=error, seconds=seconds))
            session.execute(
                update(Webhook)
                .where(Webhook.job_id == claimed.job_id, Webhook.attempts == claimed.attempts)
                .values(status=status, next_attempt_at=next_at)
            )
        context = {"request_id": claimed.job_id, "attempt": claimed.attempts, "webhook_status": status}
        if error is None:
            log.info("webhook delivered", extra=context)
        else:
            log.warning("webhook attempt failed", extra={**context, "error": error})
