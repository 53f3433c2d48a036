"""The queue and its leases: which job a worker claims next, and every transition while it runs.

Claim order is fair across keys: a key's higher `priority` goes first; among keys of equal priority the
one served longest ago goes next (round-robin, so a key that floods the queue does not make another's
single request wait behind all of its requests); within a key, its oldest request. `positions` replays that
rule over the queue as it stands, so a `queue_position` is the turn a request will get.

A job is PROCESSING while a worker holds its lease, then COMPLETED (price captured), FAILED or CANCELED
(price released). A worker that stops renewing its lease loses the job: it is queued again, or FAILED once
it has been tried `max_attempts` times. Each transition is a conditional UPDATE, so a late or duplicate
actor changes nothing and no job is ever charged twice.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, delete, func, select, update

from ..billing import ledger
from ..db import ApiKey, Database, Job, JobInput, utcnow
from ..errors import WorkerLost
from . import eventlog
from .model import ACTIVE, IMAGE, ClaimedJob, JobStatus, JobView
from .notices import Notices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demand:
    queued: int
    running: int  # under a live lease
    lapsed: int  # running under a lease that ran out: its worker is gone, and the job will be queued again
    oldest_queued_s: float | None  # how long the oldest queued request has waited

    @property
    def jobs(self) -> int:
        return self.queued + self.running + self.lapsed


# Orders the queue as claims take it: see the module's docstring.
_CLAIM_ORDER = (ApiKey.priority.desc(), ApiKey.last_claimed_at.asc().nulls_first(), Job.created_at.asc())


class Queue:
    def __init__(self, db: Database, notices: Notices, *, lease_s: float = 30.0, max_attempts: int = 3) -> None:
        self.db = db
        self.notices = notices
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts

    # --- the order -------------------------------------------------------------------------------

    def claim(self, worker_id: str) -> ClaimedJob | None:
        """Take the next job under a fresh lease."""
        now = utcnow()
        with self.db.write() as session:
            row = session.scalars(
                select(Job)
                .join(ApiKey, ApiKey.id == Job.key_id)
                .where(Job.status == JobStatus.QUEUED)
                .order_by(*_CLAIM_ORDER)
                .limit(1)
                .with_for_update(skip_locked=True, of=Job)
            ).first()
            if row is None:
                return None
            row.status = JobStatus.PROCESSING
            row.lease_owner = worker_id
            row.lease_expires_at = now + self.lease
            row.attempts += 1
            row.started_at = now
            if row.cold and row.cold_start_s is None:
                row.cold_start_s = (now - row.created_at).total_seconds()
            row.progress_stage = row.progress_step = row.progress_total = row.progress_percent = None
            session.execute(update(ApiKey).where(ApiKey.id == row.key_id).values(last_claimed_at=now))
            eventlog.record(session, row)
            self.notices.announce(session, row.id, JobStatus.PROCESSING)
            image = session.scalar(select(JobInput.image).where(JobInput.job_id == row.id))
            claimed = ClaimedJob(JobView.of(row), {IMAGE: image} if image is not None else {})
        self.notices.notify(claimed.job.id, JobStatus.PROCESSING)
        return claimed

    def positions(self) -> dict[str, int]:
        """Every queued job's turn (1: claimed next), if no other request arrives meanwhile."""
        with self.db.read() as session:
            rows = session.execute(
                select(Job.id, Job.key_id, Job.created_at, ApiKey.priority, ApiKey.last_claimed_at)
                .join(ApiKey, ApiKey.id == Job.key_id)
                .where(Job.status == JobStatus.QUEUED)
                .order_by(Job.created_at)
            ).all()
        return {job_id: turn for turn, job_id in enumerate(claim_order(rows), start=1)}

    def demand(self) -> Demand:
        """The work that needs a worker now: what autoscaling sizes a fleet by."""
        now = utcnow()
        expired = Job.lease_expires_at < now
        with self.db.read() as session:
            queued, running, lapsed, oldest = session.execute(
                select(
                    func.count().filter(Job.status == JobStatus.QUEUED),
                    func.count().filter(Job.status == JobStatus.PROCESSING, ~expired),
                    func.count().filter(Job.status == JobStatus.PROCESSING, expired),
                    func.min(Job.created_at).filter(Job.status == JobStatus.QUEUED),
                ).where(Job.status.in_([JobStatus.QUEUED, JobStatus.PROCESSING]))
            ).one()
        age = (now - oldest).total_seconds() if oldest is not None else None
        return Demand(queued=queued, running=running, lapsed=lapsed, oldest_queued_s=age)

    # --- while it runs ---------------------------------------------------------------------------

    def _held(self, job_id: str, worker_id: str):
        return update(Job).where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.PROCESSING)

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Renew the lease; False once the job is no longer this worker's (canceled, or lost)."""
        with self.db.write() as session:
            done = session.execute(self._held(job_id, worker_id).values(lease_expires_at=utcnow() + self.lease))
            return cast(CursorResult, done).rowcount == 1

    def report_progress(
        self, job_id: str, worker_id: str, stage: str, step: int, total: int, percent: float | None = None
    ) -> bool:
        """Record progress and renew the lease; False means stop: the job is no longer this worker's."""
        with self.db.write() as session:
            row = _owned(session, job_id, worker_id)
            if row is None:
                return False
            row.progress_stage, row.progress_step, row.progress_total = stage, step, total
            row.progress_percent = percent
            row.lease_expires_at = utcnow() + self.lease
            eventlog.record(session, row)
            self.notices.announce(session, job_id, JobStatus.PROCESSING, progress=True)
        self.notices.notify(job_id, JobStatus.PROCESSING)
        return True

    # --- the end ---------------------------------------------------------------------------------

    def complete(self, job_id: str, worker_id: str, result_key: str, result: dict) -> bool:
        """Mark the job done and capture its price; False (nothing changed) if it was no longer ours."""
        with self.db.write() as session:
            row = _owned(session, job_id, worker_id)
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
            eventlog.record_end(session, row)
            self.notices.announce(session, job_id, JobStatus.COMPLETED)
        self.notices.notify(job_id, JobStatus.COMPLETED)
        return True

    def fail(self, job_id: str, worker_id: str, code: str, message: str) -> bool:
        """Mark the job failed and give its price back; False if it was no longer ours."""
        with self.db.write() as session:
            row = _owned(session, job_id, worker_id)
            if row is None:
                return False
            self._finish_unbilled(session, row, JobStatus.FAILED, code, message)
        self.notices.notify(job_id, JobStatus.FAILED)
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
            self.notices.notify(job_id, JobStatus.CANCELED)
        return view

    def reap(self, now: datetime | None = None) -> int:
        """Take jobs back from workers whose leases ran out: queue them again, or fail them once they have
        had all their attempts. Safe to run from every process at once."""
        now = now or utcnow()
        with self.db.read() as session:
            expired = session.execute(
                select(Job.id, Job.lease_owner).where(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < now)
            ).all()
        reaped = 0
        for job_id, owner in expired:
            with self.db.write() as session:
                row = session.scalars(
                    select(Job)
                    .where(
                        Job.id == job_id,
                        Job.status == JobStatus.PROCESSING,
                        Job.lease_owner == owner,
                        Job.lease_expires_at < now,
                    )
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    continue
                if row.attempts >= self.max_attempts:
                    status = JobStatus.FAILED
                    lost = WorkerLost.after(row.attempts, self.max_attempts)
                    self._finish_unbilled(session, row, status, lost.code, lost.message)
                else:
                    status = JobStatus.QUEUED
                    row.status = status
                    row.lease_owner = row.lease_expires_at = None
                    eventlog.record(session, row)
                    self.notices.announce(session, job_id, status)
                log.warning("lease expired", extra={"request_id": job_id, "worker": owner, "now_status": str(status)})
            reaped += 1
            self.notices.notify(job_id, status)
        return reaped

    def _finish_unbilled(self, session, row: Job, status: JobStatus, code: str, message: str) -> None:
        row.status = status
        row.finished_at = utcnow()
        row.error_code = code
        row.error_message = message
        row.lease_owner = row.lease_expires_at = None
        session.execute(delete(JobInput).where(JobInput.job_id == row.id))
        ledger.release(session, row.key_id, row.id, row.price, note=code)
        eventlog.record_end(session, row)
        self.notices.announce(session, row.id, status)


def _owned(session, job_id: str, worker_id: str) -> Job | None:
    return session.scalars(
        select(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == JobStatus.PROCESSING)
        .with_for_update()
    ).first()


def claim_order(queued) -> list[str]:
    """Job ids in the order claims will take them. `queued`: (job id, key id, created_at, priority,
    last_claimed_at) rows, oldest first. Each turn goes to the highest priority, then the key served longest
    ago (never served: first, oldest job first), then its oldest job; that key is then the latest served."""
    jobs: dict[str, deque] = defaultdict(deque)
    keys: dict[str, tuple[int, datetime | None]] = {}
    for job_id, key_id, created_at, priority, last_claimed_at in queued:
        jobs[key_id].append((created_at.timestamp(), job_id))
        keys[key_id] = (priority, last_claimed_at)
    # (priority, then: 0 never served / 1 served at a real time / 2 served in this replay, then when).
    turns = [
        (-priority, 0 if last is None else 1, jobs[key_id][0][0] if last is None else last.timestamp(),
         jobs[key_id][0][0], key_id)
        for key_id, (priority, last) in keys.items()
    ]
    heapq.heapify(turns)
    order = []
    while turns:
        negative_priority, _, _, _, key_id = heapq.heappop(turns)
        order.append(jobs[key_id].popleft()[1])
        if jobs[key_id]:
            heapq.heappush(turns, (negative_priority, 2, len(order), jobs[key_id][0][0], key_id))
    return order
