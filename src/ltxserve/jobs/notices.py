"""Who hears that a job changed, and how.

In this process, listeners subscribed here are called once the change has committed. Across processes,
on PostgreSQL, the change's transaction sends NOTIFY (delivered when it commits): on `ltxserve_jobs` when a
job is queued, which wakes idle workers anywhere, and on `ltxserve_events`, with the job's id, for every
change, which feeds each server process's event feed. On SQLite nothing crosses processes by itself: the
supervised worker's pipe and the event feed's polling do that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import text

from ..db import Database
from .model import JobStatus

JOBS_CHANNEL = "ltxserve_jobs"
EVENTS_CHANNEL = "ltxserve_events"

Listener = Callable[[str, JobStatus], None]


class Notices:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def notify(self, job_id: str, status: JobStatus) -> None:
        """Tell this process's listeners (after the commit, or of a change another process reported)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job_id, status)

    def announce(self, session, job_id: str, status: JobStatus, *, progress: bool = False) -> None:
        """Within the change's transaction: tell other processes, on PostgreSQL, once it commits. The
        payload is the job id and what changed: its status, or `progress`."""
        if self.db.is_sqlite:
            return
        payload = f"{job_id} {'progress' if progress else status}"
        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": EVENTS_CHANNEL, "payload": payload})
        if status is JobStatus.QUEUED:
            session.execute(text(f"NOTIFY {JOBS_CHANNEL}"))

    def listen_for_jobs(self, wake: Callable[[], None], stop: threading.Event) -> bool:
        """Have `wake` called as soon as any process queues a job: on PostgreSQL through LISTEN, on a thread
        of its own until `stop` is set. False on SQLite, where workers in other processes poll."""
        if self.db.is_sqlite:
            return False
        threading.Thread(target=self.db.listen, args=(JOBS_CHANNEL, lambda _payload: wake(), stop),
                         name="ltxserve-listen", daemon=True).start()
        return True
