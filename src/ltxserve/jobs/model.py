"""What the job store hands out: a job's state as a value, a claimed job, an event of its log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..db import Job


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


ACTIVE = (JobStatus.QUEUED, JobStatus.PROCESSING)
TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


@dataclass(frozen=True)
class JobView:
    id: str
    key_id: str
    model: str
    status: JobStatus
    request: dict
    order: dict | None
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


# The name of the one medium the job store keeps so far (a job's `image`); orders refer to media by name.
IMAGE = "image"


@dataclass(frozen=True)
class ClaimedJob:
    job: JobView
    media: dict[str, bytes]  # what its order names, by name


@dataclass(frozen=True)
class Event:
    """One entry of a job's event log: its status, and its progress or error, as of that change."""

    id: int
    job_id: str
    data: dict

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.data["status"])

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL
