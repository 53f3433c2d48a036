"""The event feed on its own, on both databases: what wakes the stream of a queued request."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from ltxserve.api.feed import EventFeed
from ltxserve.billing import keys
from ltxserve.jobs import JobStatus, JobStore


def test_progress_never_wakes_a_queued_stream_and_a_status_change_does(db):
    store = JobStore(db, lease_s=30, max_attempts=2)
    key = keys.create_key(db, credits=Decimal(10)).info
    for job_id in ("running", "ahead", "waiting"):
        store.intake.submit(key, job_id=job_id, model="ltx-2-fast", request={"prompt": "p"}, order={},
                            price=300_000, concurrency_limit=10)
    assert store.queue.claim("w1").job.id == "running"
    feed = EventFeed(store, poll_s=0.05)
    feed.start()

    async def follow() -> list[list | None]:
        waiting = feed.subscribe("waiting", store.events.last_id(), queue=True)
        for step in range(1, 6):
            assert store.queue.report_progress("running", "w1", "stage1", step, 5)
        # Each progress report would have woken the stream with an empty batch before its own cancel's events;
        # a cancel ahead of it wakes it after them.
        store.queue.cancel("waiting", "canceled", "test")
        store.queue.cancel("ahead", "canceled", "test")
        heard: list[list | None] = []
        async with asyncio.timeout(10):
            while [] not in heard:
                heard.append(await waiting.next())
        waiting.close()
        return heard

    try:
        heard = asyncio.run(follow())
    finally:
        feed.stop()
    own = [i for i, batch in enumerate(heard) if batch and batch[-1].status is JobStatus.CANCELED]
    assert own and heard.index([]) > own[0], heard
