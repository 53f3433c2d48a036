"""Waiting for a job to finish without holding a thread: woken at once by this process's workers,
and polling the job store for workers elsewhere."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from starlette.concurrency import run_in_threadpool

from ..jobs import TERMINAL, JobStatus, JobStore, JobView


class JobWaiter:
    def __init__(self, store: JobStore, poll_s: float = 0.5) -> None:
        self._store = store
        self._poll_s = poll_s
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(list)
        store.subscribe(self._on_change)

    def close(self) -> None:
        self._store.unsubscribe(self._on_change)

    def _on_change(self, job_id: str, status: JobStatus) -> None:
        if status in TERMINAL:
            for loop, event in list(self._waiting.get(job_id, ())):
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: str, timeout_s: float) -> JobView | None:
        """The job once finished, or None if `timeout_s` passes first."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        self._waiting[job_id].append(entry)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                job = await run_in_threadpool(self._store.get, job_id)
                if job is None or job.finished:
                    return job
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(event.wait(), min(self._poll_s, remaining))
                except TimeoutError:
                    # A worker in another process may have died holding this job: take it back now
                    # rather than wait for some other worker to notice.
                    await run_in_threadpool(self._store.reap)
                event.clear()
        finally:
            self._waiting[job_id].remove(entry)
            if not self._waiting[job_id]:
                del self._waiting[job_id]
