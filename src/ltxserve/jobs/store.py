"""The job store: every state change of a job, and the money that goes with it, in one transaction.

A job is QUEUED when accepted (its price reserved), PROCESSING while a worker holds its lease, then
COMPLETED (price captured), FAILED or CANCELED (price released). A worker that stops renewing its
lease loses the job: it is queued again, or FAILED once it has been tried `max_attempts` times. Each
transition is a conditional UPDATE, so a late or duplicate actor changes nothing and no job is ever
charged twice.

Every transition and progress report also appends to the job's event log (the events stream replays
it), and a job that ends with a webhook URL gets its outbox row in the same transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, text, update

from ..billing import ledger
from ..billing.keys import KeyInfo
from ..billing.prices import format_dollars
from ..db import ApiKey, Database, Job, JobEvent, JobInput, Webhook, WorkerRow, utcnow
from ..errors import IdempotencyConflict, InsufficientCredits, RateLimited

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


ACTIVE = (JobStatus.QUEUED, JobStatus.PROCESSING)
TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})

# PostgreSQL channel on which a queued job wakes idle workers in every process.
JOBS_CHANNEL = "ltxserve_jobs"

# Seconds a client is told to wait when its key already has as many generations as it may run at once.
CONCURRENCY_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class JobView:
    id: str
    key_id: str
    model: str
    status: JobStatus
    request: dict
    price: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    progress_stage: str | None
    progress_step: int | None
    progress_total: int | None
    progress_percent: float | None
    error_code: str | None
    error_message: str | None
    result_key: str | None
    result: dict | None
    result_expired_at: datetime | None
    webhook_url: str | None
    base_url: str | None

    @classmethod
    def of(cls, row: Job) -> JobView:
        return cls(
            **{name: getattr(row, name) for name in cls.__dataclass_fields__ if name != "status"},
            status=JobStatus(row.status),
        )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def generation_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    data: dict

    @property
    def finished(self) -> bool:
        return self.data["status"] in TERMINAL


def _event(session, row: Job) -> None:
    """Log the job's state as it now is: status, and progress while it runs or the error once it failed."""
    data: dict = {"status": str(row.status)}
    if row.status == JobStatus.PROCESSING and row.progress_stage is not None:
        data["progress"] = {
            "stage": row.progress_stage,
            "step": row.progress_step,
            "total": row.progress_total,
            "percent": row.progress_percent,
        }
    if row.error_message is not None and row.status in TERMINAL:
        data["error"] = row.error_message
    session.add(JobEvent(job_id=row.id, data=data, created_at=utcnow()))


@dataclass(frozen=True)
class ClaimedJob:
    job: JobView
    image: bytes | None


Listener = Callable[[str, JobStatus], None]


class JobStore:
    def __init__(self, db: Database, *, lease_s: float = 30.0, max_attempts: int = 3) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()

    # Listeners let waiters in this process react at once; other processes see changes by polling.
    def subscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.remove(listener)

    def listen_for_jobs(self, wake: Callable[[], None], stop: threading.Event) -> bool:
        """Have `wake` called as soon as any process queues a job: on PostgreSQL through LISTEN/NOTIFY,
        on a thread of its own until `stop` is set. False on SQLite, where workers in other processes poll
        (in this process, `subscribe` already wakes them)."""
        if self.db.is_sqlite:
            return False
        threading.Thread(target=self.db.listen, args=(JOBS_CHANNEL, wake, stop), name="ltxserve-listen",
                         daemon=True).start()
        return True

    def _announce(self, session) -> None:
        # Sent when the transaction commits, to every process listening (see listen_for_jobs).
        if not self.db.is_sqlite:
            session.execute(text(f"NOTIFY {JOBS_CHANNEL}"))

    def notify(self, job_id: str, status: JobStatus) -> None:
        """Tell this process's listeners of a change made elsewhere (the supervised worker process's)."""
        self._notify(job_id, status)

    def _notify(self, job_id: str, status: JobStatus) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job_id, status)

    # --- accepting -------------------------------------------------------------------------------

    def submit(
        self,
        key: KeyInfo,
        *,
        job_id: str,
        model: str,
        request: dict,
        price: int,
        image: bytes | None,
        concurrency_limit: int,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        webhook_url: str | None = None,
        base_url: str | None = None,
    ) -> JobView:
        """Accept a job and reserve its price, or refuse it (429 or 406) without a trace.

        With an idempotency key already used by this API key, the job it made is returned as it is now
        (nothing is charged again) if `request_hash` matches, and IdempotencyConflict raised if not."""
        with self.db.write() as session:
            # Serialises this key's submissions on PostgreSQL; SQLite's write lock already does. So two
            # requests with one idempotency key cannot both get past the look-up below.
            session.execute(select(ApiKey.id).where(ApiKey.id == key.id).with_for_update())
            if idempotency_key is not None:
                earlier = self._replay(session, key.id, idempotency_key, request_hash)
                if earlier is not None:
                    return earlier
            self._admissible(session, key.id, price, concurrency_limit)
            row = Job(
                id=job_id,
                key_id=key.id,
                model=model,
                status=JobStatus.QUEUED,
                request=request,
                price=price,
                created_at=utcnow(),
                attempts=0,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                webhook_url=webhook_url,
                base_url=base_url,
            )
            session.add(row)
            session.flush()
            if image is not None:
                session.add(JobInput(job_id=job_id, image=image))
            ledger.reserve(session, key.id, job_id, price)
            _event(session, row)
            self._announce(session)
            view = JobView.of(row)
        self._notify(job_id, JobStatus.QUEUED)
        return view

    def check_admissible(self, key_id: str, price: int, concurrency_limit: int) -> None:
        """Raise what `submit` would for this key's limits and balance now. `submit` decides again, under the
        key's lock; this lets a request that cannot be accepted be refused before its image is fetched."""
        with self.db.read() as session:
            self._admissible(session, key_id, price, concurrency_limit)

    @staticmethod
    def _admissible(session, key_id: str, price: int, concurrency_limit: int) -> None:
        active = session.scalar(
            select(func.count()).select_from(Job).where(Job.key_id == key_id, Job.status.in_(ACTIVE))
        )
        if active >= concurrency_limit:
            raise RateLimited(
                f"This key already has {active} generation(s) queued or running, its limit. "
                "Retry when one finishes.",
                CONCURRENCY_RETRY_AFTER_S,
            )
        available = ledger.balance(session, key_id)
        if available < price:
            raise InsufficientCredits(
                f"Insufficient credits: this request costs ${format_dollars(price)} and the key has "
                f"${format_dollars(available)} left. Add credits or ask for a shorter or smaller clip."
            )

    def replay(self, key_id: str, idempotency_key: str, request_hash: str | None) -> JobView | None:
        """The job an earlier request with this idempotency key made, if any (IdempotencyConflict if its
        body differed). `submit` checks again, under the key's lock; this lets a retry skip the work before."""
        with self.db.read() as session:
            return self._replay(session, key_id, idempotency_key, request_hash)

    @staticmethod
    def _replay(session, key_id: str, idempotency_key: str, request_hash: str | None) -> JobView | None:
        earlier = session.scalars(
            select(Job).where(Job.key_id == key_id, Job.idempotency_key == idempotency_key)
        ).first()
        if earlier is None:
            return None
        if earlier.request_hash != request_hash:
            raise IdempotencyConflict(
                f"The Idempotency-Key {idempotency_key!r} was already used for request {earlier.id} with a "
                "different body. Use a new key for a new request."
            )
        return JobView.of(earlier)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobView | None:
        with self.db.read() as session:
            row = session.get(Job, job_id)
            return JobView.of(row) if row is not None else None

    def get_for_key(self, job_id: str, key_id: str) -> JobView | None:
        """The job if it is this key's: another key's job is as absent as an unknown one."""
        job = self.get(job_id)
        return job if job is not None and job.key_id == key_id else None

    def queue_position(self, job: JobView) -> int:
        """1 for the next job a worker will claim."""
        with self.db.read() as session:
            ahead = session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.status == JobStatus.QUEUED, Job.created_at < job.created_at)
            )
        return ahead + 1

    def events_after(self, job_id: str, after_id: int) -> list[Event]:
        with self.db.read() as session:
            rows = session.execute(
                select(JobEvent.id, JobEvent.data)
                .where(JobEvent.job_id == job_id, JobEvent.id > after_id)
                .order_by(JobEvent.id)
            ).all()
        return [Event(id, job_id, data) for id, data in rows]

    def balance(self, key_id: str) -> int:
        with self.db.read() as session:
            return ledger.balance(session, key_id)

    def queue_depth(self) -> int:
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED))

    def captured_total(self) -> int:
        with self.db.read() as session:
            return ledger.captured_total(session)

    # --- working ---------------------------------------------------------------------------------

    def claim(self, worker_id: str) -> ClaimedJob | None:
        """Take the oldest queued job under a fresh lease."""
        now = utcnow()
        with self.db.write() as session:
            row = session.scalars(
                select(Job)
                .where(Job.status == JobStatus.QUEUED)
                .order_by(Job.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            row.status = JobStatus.PROCESSING
            row.lease_owner = worker_id
            row.lease_expires_at = now + self.lease
            row.attempts += 1
            row.started_at = now
            row.progress_stage = row.progress_step = row.progress_total = row.progress_percent = None
            _event(session, row)
            image = session.scalar(select(JobInput.image).where(JobInput.job_id == row.id))
            claimed = ClaimedJob(JobView.of(row), image)
        self._notify(claimed.job.id, JobStatus.PROCESSING)
        return claimed

    def _held(self, job_id: str, worker_id: str):
        return update(Job).where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.PROCESSING)

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Renew the lease; False once the job is no longer this worker's (canceled, or lost)."""
        with self.db.write() as session:
            done = session.execute(self._held(job_id, worker_id).values(lease_expires_at=utcnow() + self.lease))
            return done.rowcount == 1

    def report_progress(
        self, job_id: str, worker_id: str, stage: str, step: int, total: int, percent: float | None = None
    ) -> bool:
        """Record progress and renew the lease; False means stop: the job is no longer this worker's."""
        with self.db.write() as session:
            row = self._owned(session, job_id, worker_id)
            if row is None:
                return False
            row.progress_stage, row.progress_step, row.progress_total = stage, step, total
            row.progress_percent = percent
            row.lease_expires_at = utcnow() + self.lease
            _event(session, row)
        return True

    @staticmethod
    def _owned(session, job_id: str, worker_id: str) -> Job | None:
        return session.scalars(
            select(Job)
            .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.PROCESSING)
            .with_for_update()
        ).first()

    def complete(self, job_id: str, worker_id: str, result_key: str, result: dict) -> bool:
        """Mark the job done and capture its price; False (nothing changed) if it was no longer ours."""
        with self.db.write() as session:
            row = self._owned(session, job_id, worker_id)
            if row is None:
                return False
            row.status = JobStatus.COMPLETED
            row.finished_at = utcnow()
            row.result_key = result_key
            row.result = result
            row.lease_owner = row.lease_expires_at = None
            row.progress_percent = 100.0
            session.execute(delete(JobInput).where(JobInput.job_id == job_id))
            ledger.capture(session, row.key_id, job_id, row.price)
            self._ended(session, row)
        self._notify(job_id, JobStatus.COMPLETED)
        return True

    def fail(self, job_id: str, worker_id: str, code: str, message: str) -> bool:
        """Mark the job failed and give its price back; False if it was no longer ours."""
        with self.db.write() as session:
            row = self._owned(session, job_id, worker_id)
            if row is None:
                return False
            self._finish_unbilled(session, row, JobStatus.FAILED, code, message)
        self._notify(job_id, JobStatus.FAILED)
        return True

    def cancel(self, job_id: str, code: str, message: str) -> JobView | None:
        """Cancel a queued or running job and give its price back. A running job's worker finds out at its
        next progress report. Returns the job as it now is (unchanged if it had already finished)."""
        with self.db.write() as session:
            row = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
            if row is None:
                return None
            changed = row.status in ACTIVE
            if changed:
                self._finish_unbilled(session, row, JobStatus.CANCELED, code, message)
            view = JobView.of(row)
        if changed:
            self._notify(job_id, JobStatus.CANCELED)
        return view

    def reap(self) -> int:
        """Take jobs back from workers whose leases ran out: queue them again, or fail them once they have
        had all their attempts. Safe to run from every process at once."""
        now = utcnow()
        with self.db.read() as session:
            expired = session.execute(
                select(Job.id, Job.lease_owner).where(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < now)
            ).all()
        reaped = 0
        for job_id, owner in expired:
            with self.db.write() as session:
                row = session.scalars(
                    select(Job).where(
                        Job.id == job_id,
                        Job.status == JobStatus.PROCESSING,
                        Job.lease_owner == owner,
                        Job.lease_expires_at < now,
                    ).with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    continue
                if row.attempts >= self.max_attempts:
                    status = JobStatus.FAILED
                    self._finish_unbilled(
                        session,
                        row,
                        status,
                        "worker_lost",
                        f"The worker running this job stopped responding, {row.attempts} time(s) out of "
                        f"{self.max_attempts} allowed. You were not charged.",
                    )
                else:
                    status = JobStatus.QUEUED
                    row.status = status
                    row.lease_owner = row.lease_expires_at = None
                    _event(session, row)
                    self._announce(session)
                log.warning(
                    "lease expired", extra={"request_id": job_id, "worker": owner, "now_status": str(status)}
                )
            reaped += 1
            self._notify(job_id, status)
        return reaped

    def _finish_unbilled(self, session, row: Job, status: JobStatus, code: str, message: str) -> None:
        row.status = status
        row.finished_at = utcnow()
        row.error_code = code
        row.error_message = message
        row.lease_owner = row.lease_expires_at = None
        session.execute(delete(JobInput).where(JobInput.job_id == row.id))
        ledger.release(session, row.key_id, row.id, row.price, note=code)
        self._ended(session, row)

    @staticmethod
    def _ended(session, row: Job) -> None:
        _event(session, row)
        if row.webhook_url is not None:
            session.add(Webhook(job_id=row.id, url=row.webhook_url, status="pending", attempts=0,
                                created_at=utcnow(), next_attempt_at=utcnow()))

    # --- results ---------------------------------------------------------------------------------

    def expirable(self, finished_before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(job id, result key) of stored results older than the cut-off."""
        with self.db.read() as session:
            return [
                tuple(row)
                for row in session.execute(
                    select(Job.id, Job.result_key)
                    .where(Job.status == JobStatus.COMPLETED, Job.result_key.is_not(None),
                           Job.finished_at < finished_before)
                    .limit(limit)
                )
            ]

    def mark_expired(self, job_id: str) -> None:
        """Record that the result is gone (deleted from storage first, so a crash between leaves no orphan)."""
        with self.db.write() as session:
            session.execute(
                update(Job).where(Job.id == job_id).values(result_key=None, result_expired_at=utcnow())
            )

    def sweepable(self, finished_before: datetime, limit: int = 500) -> list[tuple[str, str | None]]:
        """(job id, result key or None) of requests that ended before the cut-off."""
        with self.db.read() as session:
            return [
                (job_id, result_key)
                for job_id, result_key in session.execute(
                    select(Job.id, Job.result_key)
                    .where(Job.status.in_(TERMINAL), Job.finished_at < finished_before)
                    .limit(limit)
                )
            ]

    def sweep(self, job_ids: list[str], workers_seen_before: datetime) -> None:
        """Delete these requests' records: the job, its events, its webhook outbox and attempts (their rows
        cascade). The ledger keeps its entries, which name the request. Workers not heard from since the
        cut-off go too."""
        with self.db.write() as session:
            session.execute(delete(Job).where(Job.id.in_(job_ids), Job.status.in_(TERMINAL)))
            session.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < workers_seen_before))

    # --- workers ---------------------------------------------------------------------------------

    def register_worker(self, worker_id: str, *, host: str, pid: int, model: str) -> None:
        with self.db.write() as session:
            session.merge(WorkerRow(id=worker_id, host=host, pid=pid, model=model, started_at=utcnow(),
                                    heartbeat_at=utcnow()))

    def worker_heartbeat(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=utcnow()))

    def unregister_worker(self, worker_id: str) -> None:
        with self.db.write() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))

    def live_workers(self) -> int:
        """Workers heard from within one lease: the ones that could take a job now or soon."""
        with self.db.read() as session:
            return session.scalar(
                select(func.count()).select_from(WorkerRow).where(WorkerRow.heartbeat_at > utcnow() - self.lease)
            )
