"""One listener per server process for every job's changes, fanned out to everything here that waits on
them: event streams, sync waiters, the status cache. No stream or waiter polls the database itself.

Where the changes come from:
- PostgreSQL: each change's transaction sends NOTIFY with the job's id (see jobs/notices.py). A thread
  LISTENs and reads the new events of each job that something here watches. (Per job, not the whole log:
  concurrent transactions may commit out of id order, but one job's changes take turns on its row.)
- SQLite: a thread reads the whole event log after the last id it saw, at once when this process made a
  change or its supervised worker reported one (the pipe), else every `poll_s` (changes made by workers in
  other processes). SQLite's writers take turns, so ids come in commit order and nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from ..jobs import Event, JobStatus, JobStore
from ..jobs.notices import EVENTS_CHANNEL

log = logging.getLogger(__name__)

# Called on the feed's thread with a job id and its new events (empty: changed, events unknown), or with
# None when anything may have changed (a lost LISTEN connection came back).
Watcher = Callable[[str | None, list[Event]], None]


class Subscription:
    """A job's events as they come, for one async consumer (a stream, a waiter).

    With `queue` set (a stream of a queued job), it is also woken, with an empty batch, by any status change
    of another job: one that may move this job's turn in the queue.
    """

    def __init__(self, feed: EventFeed, job_id: str, loop: asyncio.AbstractEventLoop, queue: bool) -> None:
        self.feed, self.job_id, self._loop = feed, job_id, loop
        self.queue = queue
        self._queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()

    def _put(self, events: list[Event] | None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, events)

    async def next(self, timeout_s: float | None = None) -> list[Event] | None:
        """The next batch of new events; empty: the queue moved. None: look at the database (it changed, the
        events are not read yet), or `timeout_s` passed."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.feed._drop(self)


class EventFeed:
    def __init__(self, store: JobStore, poll_s: float = 0.5) -> None:
        self.store = store
        self.poll_s = poll_s
        self._sqlite = store.db.is_sqlite
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._watchers: list[Watcher] = []
        self._cursors: dict[str, int] = {}  # PostgreSQL: the last event dispatched, per watched job
        self._changed: set[str] = set()
        self._moved: set[str] = set()  # PostgreSQL: jobs whose status changed, not only their progress
        self._everything_changed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_id = 0

    def start(self) -> None:
        self._last_id = self.store.events.last_id()
        self.store.notices.subscribe(self._local_change)
        threading.Thread(target=self._run, name="ltxserve-feed", daemon=True).start()
        if not self._sqlite:
            threading.Thread(target=self.store.db.listen, name="ltxserve-feed-listen", daemon=True,
                             args=(EVENTS_CHANNEL, self._notified, self._stop, self._reconnected)).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.store.notices.unsubscribe(self._local_change)

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def subscribe(self, job_id: str, after_id: int, *, queue: bool = False) -> Subscription:
        """Events of `job_id` from now on; `after_id` is the last one the subscriber has read itself."""
        subscription = Subscription(self, job_id, asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscriptions[job_id].add(subscription)
            self._cursors[job_id] = max(self._cursors.get(job_id, 0), after_id)
        return subscription

    def _drop(self, subscription: Subscription) -> None:
        with self._lock:
            subscribers = self._subscriptions.get(subscription.job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[subscription.job_id]
                    self._cursors.pop(subscription.job_id, None)

    # --- sources ---------------------------------------------------------------------------------

    def _local_change(self, job_id: str, status: JobStatus) -> None:
        # Made here, or by the supervised worker (its pipe): whatever waits on the job looks again at once,
        # without waiting for the feed's own read.
        for watcher in self._watchers:
            watcher(job_id, [])
        with self._lock:
            self._changed.add(job_id)
            subscribers = list(self._subscriptions.get(job_id, ()))
        for subscription in subscribers:
            subscription._put(None)
        self._wake.set()

    def _notified(self, payload: str) -> None:
        job_id, _, what = payload.partition(" ")
        with self._lock:
            self._changed.add(job_id)
            if what != "progress":
                self._moved.add(job_id)
        self._wake.set()

    def _reconnected(self) -> None:
        with self._lock:
            self._everything_changed = True
        self._wake.set()

    # --- dispatch --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s if self._sqlite else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._dispatch_log() if self._sqlite else self._dispatch_changed()
            except Exception:
                log.warning("the event feed could not read the job store; retrying", exc_info=True)
                self._stop.wait(min(5.0, self.poll_s * 4))
                self._wake.set()

    def _dispatch_log(self) -> None:
        with self._lock:
            self._changed.clear()
        while events := self.store.events.since(self._last_id):
            self._last_id = events[-1].id
            by_job: dict[str, list[Event]] = defaultdict(list)
            for event in events:
                by_job[event.job_id].append(event)
            for job_id, batch in by_job.items():
                self._deliver(job_id, batch)

    def _dispatch_changed(self) -> None:
        with self._lock:
            changed, self._changed = self._changed, set()
            moved, self._moved = self._moved, set()
            everything, self._everything_changed = self._everything_changed, False
            watched = set(self._subscriptions)
        if everything:
            for watcher in self._watchers:
                watcher(None, [])
            changed |= watched
            self._queue_moved(None)
        for job_id in changed:
            events: list[Event] = []
            if job_id in watched:
                with self._lock:
                    after = self._cursors.get(job_id, 0)
                events = self.store.events.after(job_id, after)
            if events:
                self._deliver(job_id, events)
            else:
                for watcher in self._watchers:
                    watcher(job_id, [])
                if job_id in moved:
                    self._queue_moved(job_id)

    def _deliver(self, job_id: str, events: list[Event]) -> None:
        for watcher in self._watchers:
            watcher(job_id, events)
        with self._lock:
            if job_id in self._cursors:
                self._cursors[job_id] = max(self._cursors[job_id], events[-1].id)
            subscribers = list(self._subscriptions.get(job_id, ()))
        for subscription in subscribers:
            subscription._put(events)
        if any("progress" not in event.data for event in events):
            self._queue_moved(job_id)

    def _queue_moved(self, job_id: str | None) -> None:
        """Wake the streams of queued jobs (but `job_id`'s own): a status change may have moved their turn.
        Progress never does, so it wakes none of them."""
        with self._lock:
            waiting = [s for subs in self._subscriptions.values() for s in subs if s.queue and s.job_id != job_id]
        for subscription in waiting:
            subscription._put([])
