"""The job store's tables: API keys, jobs (with their input images), the credits ledger, live workers.

Every query against them is portable between SQLite and PostgreSQL; times are UTC, money is integer
micro-dollars.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """SQLite drops time zones; this gives every datetime back as aware UTC on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of the whole key: keys are 256 random bits, so a fast hash is as safe as a slow one.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Signs this key's webhooks. Kept readable (a signature needs it), made on first use.
    webhook_secret: Mapped[str | None] = mapped_column(String(64))
    # Spendable micro-dollars, moved in the transaction of every ledger entry (which stay the audit log):
    # what the ledger's entries sum to, without summing them on every request.
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Claim order: higher priority first; among equals, the key served longest ago (round-robin).
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_key_status", "key_id", "status"),
        # NULLs never collide, so requests without an Idempotency-Key are unconstrained. An index, not a
        # table constraint: SQLite adds it in place, where a constraint would rebuild the jobs table.
        Index("uq_jobs_key_idempotency", "key_id", "idempotency_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the request id the client sees
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict] = mapped_column(JSON)  # the request as validated, seed fixed, echoed in its record
    # What a worker makes of it (ltxserve.order.Order's JSON); images are in job_inputs. NULL in rows queued
    # before orders existed: a worker refuses those as of an unknown version.
    order: Mapped[dict | None] = mapped_column(JSON)
    price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_stage: Mapped[str | None] = mapped_column(String(32))
    progress_step: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_percent: Mapped[float | None] = mapped_column(Float)  # of the whole generation, 0-100
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    result_key: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict | None] = mapped_column(JSON)  # what the engine reported: size, seed, timings
    result_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the clip was deleted then
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))  # of the body as sent, for idempotency
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # The server's address as the client called it: absolute URLs in webhooks sent later from any process.
    base_url: Mapped[str | None] = mapped_column(String(255))
    # Accepted while no worker was live (a fleet at zero, a worker loading): the wait until its first claim
    # is the cold start a scale-from-zero fleet costs.
    cold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cold_start_s: Mapped[float | None] = mapped_column(Float)


class JobEvent(Base):
    """Every status and progress change of a job, in order; the events stream replays them from any id."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)


class Webhook(Base):
    """An outbox row, written in the transaction that ends the job, so no terminal state goes unsent."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_status_next", "status", "next_attempt_at"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float] = mapped_column(Float)


class ServerSecret(Base):
    """Secrets every server process must share (e.g. the key that signs output URLs), made by migration."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class JobInput(Base):
    """The media a job's order names, fetched and decoded at accept time, so that a worker never reaches the
    internet nor parses a client's file: the pixels of its `image`, its only medium so far."""

    __tablename__ = "job_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerEntry(Base):
    """Append-only, the audit log of every key's balance (api_keys.balance moves with each entry).

    grant: credits added. reserve: the price held when a job is accepted. capture: the held price spent
    on success. release: the held price given back. A job has at most one of each kind.
    """

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_ledger_job_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    # The request charged. Not a foreign key: the ledger outlives the job records (LTXSERVE_RECORD_TTL_S).
    job_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # micro-dollars, always > 0; the kind gives the sign
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")


class WorkerRow(Base):
    """A worker that has loaded its model and is heartbeating; the API refuses jobs (502) when none is."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fleet: Mapped[str | None] = mapped_column(String(64))  # the Ray Serve fleet this worker is a replica of
    draining: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # claims nothing new


class Fleet(Base):
    """A Ray Serve worker fleet (`ltxserve fleet deploy`): its bounds, and what its autoscaling policy last
    reported. The API accepts requests while no worker is live as long as the policy keeps reporting, since
    the fleet will start a replica for them."""

    __tablename__ = "fleets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    min_replicas: Mapped[int] = mapped_column(Integer)
    max_replicas: Mapped[int] = mapped_column(Integer)
    jobs_per_replica: Mapped[int] = mapped_column(Integer)
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    target: Mapped[int] = mapped_column(Integer, default=0)  # replicas the policy asks Ray for
    replicas: Mapped[int] = mapped_column(Integer, default=0)  # replicas Ray has, loading or running
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
