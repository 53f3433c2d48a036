"""A worker: claims jobs from the job store under a lease, runs them on the engine, stores the result.

The same class runs in the worker process `ltxserve serve` supervises (the embedded default), in
`ltxserve worker`, or on another machine pointed at the same database and storage. It talks to nothing
but the job store, the engine and storage.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..db import STORE_ERRORS
from ..engine.spec import Progress
from ..jobs import ClaimedJob, JobStatus, JobStore
from ..media.images import unpack_pixels
from ..order import Order, UnsupportedOrder
from ..storage import ResultStorage

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)


class _Revoked(Exception):
    """The job stopped being ours mid-generation: canceled, or our lease lapsed."""


class _Unrecorded(Exception):
    """The job store did not take a finished job's completion within Worker.RESULT_RETRY_S."""


@dataclass(frozen=True)
class WorkerIdentity:
    """Who a worker is in the job store. The id is new for every worker started, so a restarted process or
    a replica that reuses a name never holds an earlier worker's leases."""

    id: str
    host: str
    fleet: str | None = None

    @classmethod
    def local(cls, prefix: str | None = None, host: str | None = None, fleet: str | None = None) -> WorkerIdentity:
        prefix = prefix or socket.gethostname()
        return cls(f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}", host or socket.gethostname(), fleet)


@dataclass(frozen=True)
class WorkerConfig:
    work_dir: Path  # scratch space for clips being written
    heartbeat_s: float = 5.0
    poll_s: float = 1.0


class Worker:
    RETRY_S = 0.5
    RETRY_MAX_S = 30.0
    RESULT_RETRY_S = 120.0  # how long a stored clip waits for the job store to take its completion

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        storage: ResultStorage,
        config: WorkerConfig,
        *,
        model_name: str,
        on_generated: Callable[[float], None] | None = None,
        on_problem: Callable[[str | None], None] | None = None,
        identity: WorkerIdentity | None = None,
        may_claim: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.engine = engine
        self.storage = storage
        self.config = config
        self.model_name = model_name
        self.identity = identity or WorkerIdentity.local()
        self.id = self.identity.id
        self._may_claim = may_claim
        self._on_generated = on_generated
        self._on_problem = on_problem
        self._wake = threading.Event()
        self.problem: str | None = None  # what keeps the loop from working, while it lasts
        self.current_job: str | None = None  # the job in hand, while there is one

    def _on_job_event(self, job_id: str, status: JobStatus) -> None:
        if status is JobStatus.QUEUED:
            self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Serve jobs until `stop` is set. Registered as live only while this loop runs.

        The job store may go away (a database restart, a network cut): the loop then retries with a
        backoff, says what is wrong (log, `problem`, `on_problem`), and carries on once it answers again."""
        self.store.notices.subscribe(self._on_job_event)
        self.store.notices.listen_for_jobs(self._wake.set, stop)
        registered = False
        backoff = self.RETRY_S
        last_beat = time.monotonic()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    if not registered:
                        self.store.workers.register(
                            self.id, host=self.identity.host, pid=os.getpid(), model=self.model_name,
                            fleet=self.identity.fleet,
                        )
                        registered = True
                        log.info("worker ready", extra={"worker": self.id, "model": self.model_name})
                    # A worker told to leave (a draining node) takes nothing new, and keeps heartbeating.
                    claimed = self.store.queue.claim(self.id) if self._may_claim() else None
                    if claimed is None and time.monotonic() - last_beat >= self.config.heartbeat_s:
                        self.store.workers.heartbeat(self.id)
                        last_beat = time.monotonic()
                except STORE_ERRORS as exc:
                    self._trouble(exc, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.RETRY_MAX_S)
                    continue
                self._recovered()
                backoff = self.RETRY_S
                if claimed is not None:
                    self.run_job(claimed)
                    continue
                self._wake.wait(self.config.poll_s)
        finally:
            self.store.notices.unsubscribe(self._on_job_event)
            if registered:
                try:
                    self.store.workers.unregister(self.id)
                except STORE_ERRORS:
                    log.warning("could not unregister; the row ages out after one lease", extra={"worker": self.id})

    def wake(self) -> None:
        """Look for a job now (a job was queued, or the loop should notice `stop`)."""
        self._wake.set()

    def _trouble(self, exc: Exception, retry_in_s: float) -> None:
        problem = f"the job store does not answer ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})"
        if problem != self.problem:
            log.error("job store unavailable; retrying", extra={"worker": self.id, "error": problem,
                                                                "retry_in_s": retry_in_s})
            self.problem = problem
            if self._on_problem is not None:
                self._on_problem(problem)

    def _recovered(self) -> None:
        if self.problem is not None:
            log.info("job store answers again", extra={"worker": self.id})
            self.problem = None
            if self._on_problem is not None:
                self._on_problem(None)

    def run_job(self, claimed: ClaimedJob) -> None:
        job = claimed.job
        context = {"request_id": job.id, "worker": self.id, "attempt": job.attempts}
        log.info("job started", extra=context)
        output = self.config.work_dir / f"{job.id}.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
        beating = threading.Event()
        heart = threading.Thread(target=self._beat, args=(job.id, beating), name=f"heartbeat-{job.id}", daemon=True)
        heart.start()
        started = time.perf_counter()
        self.current_job = job.id
        try:
            order = Order.from_json(job.order)
            images = {ref.name: unpack_pixels(ref, claimed.media[ref.name]) for ref in order.images}

            def progress(event: Progress) -> None:
                try:
                    ours = self.store.queue.report_progress(
                        job.id, self.id, event.stage, event.step, event.total, event.percent
                    )
                except STORE_ERRORS as exc:
                    # Keep generating: the result is stored once the job store answers again, if the job is
                    # still ours by then (its lease may have run out meanwhile).
                    self._trouble(exc, 0)
                    return
                if not ours:
                    raise _Revoked

            result = self.engine.generate(order, output, progress=progress, images=images)
            key = f"{job.id}.mp4"
            self.storage.put(output, key)
            if self._complete(job.id, key, result.to_json()):
                seconds = time.perf_counter() - started
                if self._on_generated is not None:
                    self._on_generated(seconds)
                log.info("job completed", extra={**context, "seconds": round(seconds, 3)})
            else:
                self.storage.delete(key)
                log.info("job finished after it was taken away; result dropped", extra=context)
        except _Revoked:
            log.info("job stopped: canceled or lease lost", extra=context)
        except _Unrecorded:
            # The clip stays stored under its key: the lease returns the job, and its rerun overwrites it.
            log.error("could not record the result in time; the job will run again", extra=context)
        except UnsupportedOrder as exc:
            # An order from another version of ltxserve (a fleet mid-upgrade): guessing could make the wrong
            # clip and charge for it.
            log.error("job refused: unsupported order", extra={**context, "error": str(exc)})
            self._fail(
                job.id,
                "unsupported_order",
                f"This worker cannot carry out the request: {exc}. You were not charged; send it again.",
            )
        except Exception:
            log.exception("job failed", extra=context)
            self._fail(
                job.id,
                "generation_failed",
                f"The generation failed on our side. You were not charged. Quote request id {job.id} if you "
                "report it.",
            )
        finally:
            self.current_job = None
            beating.set()
            heart.join()
            output.unlink(missing_ok=True)

    def _complete(self, job_id: str, key: str, record: dict) -> bool:
        """Mark the job done, retrying while the job store does not answer. False if the job is no longer
        ours. An attempt whose answer was lost may have gone through: the job then shows our result."""
        deadline = time.monotonic() + self.RESULT_RETRY_S
        backoff = self.RETRY_S
        while True:
            try:
                if self.store.queue.complete(job_id, self.id, key, record):
                    return True
                now = self.store.records.get(job_id)
                return now is not None and now.status is JobStatus.COMPLETED and now.result_key == key
            except STORE_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise _Unrecorded from exc
                self._trouble(exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, self.RETRY_MAX_S)

    def _fail(self, job_id: str, code: str, message: str) -> None:
        try:
            self.store.queue.fail(job_id, self.id, code, message)
        except STORE_ERRORS as exc:
            self._trouble(exc, 0)  # the lease returns the job; it is tried again

    def _beat(self, job_id: str, done: threading.Event) -> None:
        # Progress reports renew the lease too, but one denoising step of a large clip can outlast it.
        while not done.wait(self.config.heartbeat_s):
            try:
                self.store.queue.heartbeat(job_id, self.id)
                self.store.workers.heartbeat(self.id)
            except Exception:
                log.exception("heartbeat failed", extra={"request_id": job_id, "worker": self.id})
