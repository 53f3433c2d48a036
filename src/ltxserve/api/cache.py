"""What status polls read, kept in this process and told of every change by the event feed, so that a poll
of a request that has not changed costs no query.

- Jobs: a request's state as last read, dropped the moment the feed reports any change to it.
- Balances: a key's balance, dropped with any change to one of its cached requests, and after
  `balance_ttl_s` at most (credits granted by the operator are not job events).
- Queue positions: every queued request's turn, computed in one query when a poll needs them after the
  queue changed.

A read from the database is kept only if no change to the same thing was reported while it ran: a reply
never goes on showing a state that a change already replaced. On SQLite, changes made by workers in other
processes reach the feed within its poll interval; everything else arrives at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ..billing import keys
from ..jobs import Event, JobStatus, JobStore, JobView
from .feed import EventFeed


class StatusCache:
    def __init__(self, store: JobStore, feed: EventFeed, *, max_jobs: int = 50_000, balance_ttl_s: float = 1.0):
        self.store = store
        self.max_jobs = max_jobs
        self.balance_ttl_s = balance_ttl_s
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, JobView] = OrderedDict()
        # When each job last changed (a sequence number), for the reads running at that moment: bounded,
        # as only changes during a read (milliseconds) matter.
        self._changes: OrderedDict[str, int] = OrderedDict()
        self._sequence = 0
        self._balances: dict[str, tuple[int, float]] = {}
        self._positions: dict[str, int] | None = None
        # One reader of the positions at a time: a status change wakes every queued request's stream at once, and
        # they all need the same answer.
        self._reading_positions = threading.Lock()
        self._queue_version = 0
        self._generation = 0  # bumped when anything may have changed
        feed.watch(self._changed)

    # --- told of changes (the feed's thread) -----------------------------------------------------

    def _changed(self, job_id: str | None, events: list[Event]) -> None:
        with self._lock:
            if job_id is None:
                self._jobs.clear()
                self._balances.clear()
                self._positions = None
                self._generation += 1
                return
            self._sequence += 1
            self._changes[job_id] = self._sequence
            self._changes.move_to_end(job_id)
            if len(self._changes) > self.max_jobs:
                self._changes.popitem(last=False)
            job = self._jobs.pop(job_id, None)
            if job is not None:
                self._balances.pop(job.key_id, None)
            if not events or any("progress" not in event.data for event in events):
                self._positions = None  # a status change may move the queue
                self._queue_version += 1

    # --- reads ---------------------------------------------------------------------------------

    def cached_job(self, job_id: str, key_id: str) -> tuple[JobView, int] | None:
        """The key's job and balance if both are current here: no query, no thread needed."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.key_id != key_id:
                return None
            balance = self._balances.get(key_id)
            if balance is None or time.monotonic() - balance[1] > self.balance_ttl_s:
                return None
            self._jobs.move_to_end(job_id)
            return job, balance[0]

    def job(self, job_id: str, key_id: str) -> tuple[JobView, int] | None:
        """The key's job and balance, from here or from the database (one query); None if not the key's."""
        cached = self.cached_job(job_id, key_id)
        if cached is not None:
            return cached
        with self._lock:
            started, generation = self._sequence, self._generation
        found = self.store.records.with_balance(job_id, key_id)
        if found is None:
            return None
        job, balance = found
        with self._lock:
            if self._changes.get(job_id, 0) <= started and self._generation == generation:
                self._jobs[job_id] = job
                self._jobs.move_to_end(job_id)
                while len(self._jobs) > self.max_jobs:
                    self._jobs.popitem(last=False)
                self._balances[key_id] = (balance, time.monotonic())
        return job, balance

    def balance(self, key_id: str) -> int:
        with self._lock:
            cached = self._balances.get(key_id)
            if cached is not None and time.monotonic() - cached[1] <= self.balance_ttl_s:
                return cached[0]
        return keys.balance(self.store.db, key_id)

    def cached_position(self, job_id: str) -> int | None:
        with self._lock:
            return self._positions.get(job_id) if self._positions is not None else None

    def position(self, job: JobView) -> int | None:
        """A queued job's turn (1: next), or None once it is not queued."""
        return self.queue_position(job.id) if job.status is JobStatus.QUEUED else None

    def queue_position(self, job_id: str) -> int | None:
        """The job's turn in the queue as it stands (1: next); None if it is not queued."""
        with self._reading_positions:
            with self._lock:
                if self._positions is not None:
                    return self._positions.get(job_id)
                version = self._queue_version
            positions = self.store.queue.positions()
            with self._lock:
                if self._queue_version == version:
                    self._positions = positions
            return positions.get(job_id)

    def forget(self, job_id: str) -> None:
        """After this process changed the job itself (a cancel): read it afresh next time."""
        self._changed(job_id, [])
