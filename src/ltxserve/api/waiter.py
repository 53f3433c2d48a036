"""Waiting for a job to finish without holding a thread: the process's event feed says when it ends."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from ..jobs import JobStore, JobView
from .feed import EventFeed

# Looked at again this often even without news, in case a notice was lost on the way.
RECHECK_S = 5.0


class JobWaiter:
    def __init__(self, store: JobStore, feed: EventFeed) -> None:
        self._store = store
        self._feed = feed

    async def wait(self, job_id: str, key_id: str, timeout_s: float) -> tuple[JobView, int] | None:
        """The finished job and its key's balance then (one read), or None if `timeout_s` passes first (or the
        job is not the key's)."""
        deadline = time.monotonic() + timeout_s
        subscription = self._feed.subscribe(job_id, after_id=0)
        try:

            def read() -> tuple[JobView, int] | None:
                return self._store.records.with_balance(job_id, key_id)

            # Read after subscribing: an end that comes between the two is still heard.
            found = await run_in_threadpool(read)
            while found is not None and not found[0].finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                events = await subscription.next(min(remaining, RECHECK_S))
                if events is None or any(event.finished for event in events):
                    found = await run_in_threadpool(read)
            return found
        finally:
            subscription.close()
