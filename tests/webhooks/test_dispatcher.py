"""Deliveries from the outbox: each attempt recorded, backoff doubling, a bounded retry window, and the
address rules of image URLs."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from ltxserve.billing import keys
from ltxserve.db import Database, Webhook, WebhookAttempt
from ltxserve.jobs import JobStore
from ltxserve.net.safe_fetch import SafeFetcher
from ltxserve.webhooks import HEADER, RetryPolicy, WebhookDispatcher, verify
from tests.api.receiver import Receiver


@pytest.fixture
def store(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'hooks.db'}")
    db.migrate()
    yield JobStore(db)
    db.dispose()


def finished_job(store: JobStore, url: str, job_id: str = "j1") -> str:
    key = keys.create_key(store.db, credits=Decimal(1)).info
    store.intake.submit(key, job_id=job_id, model="ltx-2-fast", request={"prompt": "p"}, order={}, price=1,
                        concurrency_limit=1, webhook_url=url)
    store.queue.claim("w1")
    store.queue.complete(job_id, "w1", f"{job_id}.mp4", {"seed": 7})
    return key.id


def dispatcher(store: JobStore, policy: RetryPolicy, *, allow_loopback: bool = True) -> WebhookDispatcher:
    sender = SafeFetcher(max_bytes=1, timeout_s=5, allow_loopback=allow_loopback)
    return WebhookDispatcher(store, sender, lambda job: {"request_id": job.id, "status": job.status},
                             policy)


def outbox(store: JobStore) -> tuple[Webhook, list[WebhookAttempt]]:
    with store.db.read() as session:
        return (session.scalars(select(Webhook)).one(),
                session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all())


def test_a_delivery_is_signed_with_the_keys_secret_and_sent_once(store):
    with Receiver() as receiver:
        key_id = finished_job(store, receiver.url)
        sending = dispatcher(store, RetryPolicy())
        assert sending.run_due() == 1
        assert sending.run_due() == 0, "a delivered webhook is not sent again"
    delivery = receiver.deliveries[0]
    verify(keys.webhook_secret(store.db, key_id), delivery.body, delivery.headers[HEADER])
    assert json.loads(delivery.body) == {"request_id": "j1", "status": "COMPLETED"}
    row, attempts = outbox(store)
    assert row.status == "delivered" and [(a.attempt, a.status_code, a.error) for a in attempts] == [(1, 200, None)]


def test_failures_back_off_doubling_and_give_up_after_the_window(store):
    with Receiver(answers=[500] * 10) as receiver:
        finished_job(store, receiver.url)
        sending = dispatcher(store, RetryPolicy(backoff_s=0.2, backoff_max_s=0.4, window_s=1.0))
        deadline = time.monotonic() + 10
        while outbox(store)[0].status == "pending":
            assert time.monotonic() < deadline
            sending.run_due()
            time.sleep(0.02)
    row, attempts = outbox(store)
    assert row.status == "failed" and len(receiver.deliveries) == len(attempts) >= 3
    assert all(a.status_code == 500 and "HTTP 500" in a.error for a in attempts)
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    # Each wait is its doubling step stretched by up to a quarter (jitter), plus the polling here.
    assert 0.2 <= gaps[0] < 0.4 and all(0.4 <= gap < 0.65 for gap in gaps[1:]), gaps
    assert (attempts[-1].at - row.created_at).total_seconds() <= 1.0


def test_a_private_address_is_refused_without_a_connection(store):
    finished_job(store, "http://127.0.0.1:9/hook")
    dispatcher(store, RetryPolicy(window_s=0.001), allow_loopback=False).run_due()
    row, attempts = outbox(store)
    assert row.status == "failed" and "loopback" in attempts[0].error and attempts[0].status_code is None


def test_backoff_is_jittered_within_a_quarter_above_each_step():
    policy = RetryPolicy(backoff_s=2.0, backoff_max_s=300.0)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(8.0 <= delay <= 10.0 for delay in delays)
    assert max(delays) - min(delays) > 1.0, "the waits differ: retries from many jobs spread out"
    assert all(300.0 <= policy.delay(20) <= 375.0 for _ in range(50))


def test_due_deliveries_go_out_at_once_not_one_after_another(store):
    """Before, one run made its attempts in turn: four slow receivers took four times as long."""
    with Receiver(delay_s=1.0) as receiver:
        for number in range(4):
            finished_job(store, receiver.url, job_id=f"j{number}")
        started = time.monotonic()
        assert dispatcher(store, RetryPolicy()).run_due() == 4
        # One after another takes at least 4 s; the bound leaves room for a loaded 2-core CI machine.
        assert time.monotonic() - started < 3.0
    assert len(receiver.deliveries) == 4
