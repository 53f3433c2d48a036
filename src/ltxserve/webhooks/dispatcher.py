"""Delivering webhooks from the outbox: at least once, signed, retried with jittered exponential backoff.

A job that ends with a webhook URL gets its outbox row in the same transaction (see jobs/outbox.py), so
a crash never loses a delivery. Any server process may run the dispatcher; the outbox hands each attempt
to one of them.
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

from ..billing.keys import webhook_secret
from ..db import utcnow
from ..jobs import JobStore, JobView
from ..jobs.outbox import DELIVERED, FAILED, PENDING, Delivery
from ..net.safe_fetch import FetchFailed, FetchRefused, SafeFetcher
from . import signing

log = logging.getLogger(__name__)


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

    def __init__(self, store: JobStore, sender: SafeFetcher, payload: Callable[[JobView], dict],
                 policy: RetryPolicy, concurrency: int = 16) -> None:
        self.store = store
        self.sender = sender
        self.payload = payload
        self.policy = policy
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="ltxserve-webhook")
        self._concurrency = concurrency

    def run_due(self, limit: int | None = None) -> int:
        """Make every attempt that is due now, at once; returns how many were made."""
        due = self.store.outbox.due(limit or self._concurrency)
        return sum(self._pool.map(self._attempt, due))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _attempt(self, job_id: str) -> bool:
        # Held past the delivery's own time limit: a process that dies mid-attempt leaves it due again.
        delivery = self.store.outbox.claim(job_id, hold=timedelta(seconds=self.policy.timeout_s + 30))
        if delivery is None:
            return False
        job = self.store.records.get(job_id)
        if job is None:  # swept meanwhile: nothing left to tell
            return False
        body = json.dumps(self.payload(job), separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "ltxserve-webhooks",
            "ltxserve-delivery": f"{job_id}/{delivery.attempt}",
            signing.HEADER: signing.sign(webhook_secret(self.store.db, job.key_id), body),
        }
        started = time.perf_counter()
        status_code, error = None, None
        try:
            status_code = self.sender.post(delivery.url, body, headers, timeout_s=self.policy.timeout_s)
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except (FetchRefused, FetchFailed) as exc:
            error = str(exc)
        self._record(delivery, status_code, error, time.perf_counter() - started)
        return True

    def _record(self, delivery: Delivery, status_code: int | None, error: str | None, seconds: float) -> None:
        now = utcnow()
        if error is None:
            status, next_at = DELIVERED, now
        else:
            next_at = now + timedelta(seconds=self.policy.delay(delivery.attempt))
            expired = next_at - delivery.created_at > timedelta(seconds=self.policy.window_s)
            status = FAILED if expired else PENDING
        self.store.outbox.record(delivery, status=status, next_at=next_at, status_code=status_code, error=error,
                                 seconds=seconds)
        context = {"request_id": delivery.job_id, "attempt": delivery.attempt, "webhook_status": status}
        if error is None:
            log.info("webhook delivered", extra=context)
        else:
            log.warning("webhook attempt failed", extra={**context, "error": error})
