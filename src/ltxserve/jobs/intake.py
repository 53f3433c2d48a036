"""Accepting a request: the key's limits and balance checked, the job queued and its price reserved, in
one transaction, or a refusal (429, 406) that leaves no trace. Idempotency keys hand back the job an
earlier request made."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select

from ..billing import ledger
from ..billing.keys import KeyInfo
from ..db import Database, Job, JobInput, utcnow
from ..errors import IdempotencyConflict, InsufficientCredits, RateLimited
from . import eventlog
from .model import ACTIVE, IMAGE, JobStatus, JobView
from .notices import Notices


class Intake:
    def __init__(self, db: Database, notices: Notices) -> None:
        self.db = db
        self.notices = notices

    def submit(
        self,
        key: KeyInfo,
        *,
        job_id: str,
        model: str,
        request: dict,
        order: dict,
        price: int,
        concurrency_limit: int,
        media: Mapping[str, bytes] | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        webhook_url: str | None = None,
        base_url: str | None = None,
        cold: bool = False,
    ) -> JobView:
        """Accept a job and reserve its price, or refuse it without a trace. `request` is what its record
        echoes; `order` what a worker makes of it; `media` what the order names, by name.

        With an idempotency key already used by this API key, the job it made is returned as it is now
        (nothing is charged again) if `request_hash` matches, and IdempotencyConflict raised if not. `cold`:
        no worker was live to take it (its wait until the first claim is then recorded as a cold start)."""
        with self.db.write() as session:
            # The balance is read with the key's row locked (PostgreSQL; SQLite's write lock does the same):
            # two requests with one idempotency key, or two that each fit the balance alone, take turns here.
            available = ledger.balance(session, key.id, lock=True)
            if idempotency_key is not None:
                earlier = _replay(session, key.id, idempotency_key, request_hash)
                if earlier is not None:
                    return earlier
            _admissible(session, key.id, price, concurrency_limit, available)
            row = Job(
                id=job_id,
                key_id=key.id,
                model=model,
                status=JobStatus.QUEUED,
                request=request,
                order=order,
                price=price,
                created_at=utcnow(),
                attempts=0,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                webhook_url=webhook_url,
                base_url=base_url,
                cold=cold,
            )
            session.add(row)
            session.flush()
            if media:
                if set(media) != {IMAGE}:
                    raise ValueError(f"the job store keeps only {IMAGE!r} for a job, not {sorted(media)}")
                session.add(JobInput(job_id=job_id, image=media[IMAGE]))
            ledger.reserve(session, key.id, job_id, price)
            eventlog.record(session, row)
            self.notices.announce(session, job_id, JobStatus.QUEUED)
            view = JobView.of(row)
        self.notices.notify(job_id, JobStatus.QUEUED)
        return view

    def check_admissible(self, key_id: str, price: int, concurrency_limit: int) -> None:
        """Raise what `submit` would for this key's limits and balance now. `submit` decides again, under the
        key's lock; this lets a request that cannot be accepted be refused before its image is fetched."""
        with self.db.read() as session:
            _admissible(session, key_id, price, concurrency_limit, ledger.balance(session, key_id))

    def replay(self, key_id: str, idempotency_key: str, request_hash: str | None) -> JobView | None:
        """The job an earlier request with this idempotency key made, if any (IdempotencyConflict if its
        body differed). `submit` checks again, under the key's lock; this lets a retry skip the work before."""
        with self.db.read() as session:
            return _replay(session, key_id, idempotency_key, request_hash)


def _admissible(session, key_id: str, price: int, concurrency_limit: int, available: int) -> None:
    active = session.scalar(select(func.count()).select_from(Job).where(Job.key_id == key_id, Job.status.in_(ACTIVE)))
    if active >= concurrency_limit:
        raise RateLimited.at_concurrency(active)
    if available < price:
        raise InsufficientCredits.for_price(price, available)


def _replay(session, key_id: str, idempotency_key: str, request_hash: str | None) -> JobView | None:
    earlier = session.scalars(select(Job).where(Job.key_id == key_id, Job.idempotency_key == idempotency_key)).first()
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        raise IdempotencyConflict.for_key(idempotency_key, earlier.id)
    return JobView.of(earlier)
