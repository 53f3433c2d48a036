"""What the async API (and its webhooks) says about a request: the hosted API's v2 fields, then ours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..billing.prices import to_dollars
from ..jobs import JobStatus, JobView
from ..order.vocabulary import Stage
from .outputs import OutputLinks


class ProgressOut(BaseModel):
    stage: Stage = Field(description="The stage running now; they run in this order")
    step: int
    total: int
    percent: float | None = Field(description="Of the whole generation, 0-100")


class MetricsOut(BaseModel):
    inference_time: float | None = Field(description="Seconds the worker spent generating")
    queue_time: float | None = Field(description="Seconds from acceptance to a worker starting it")
    cost: float = Field(description="US dollars charged: the price once COMPLETED, otherwise 0")
    remaining_credits: float = Field(description="The key's spendable balance now, in US dollars")
    timings: dict[str, float] | None = Field(description="Seconds per stage of the generation")
    attempts: int = Field(description="Workers that have taken the job (more than 1 after a worker died)")


class StatusOut(BaseModel):
    request_id: str
    status: JobStatus
    metrics: MetricsOut
    queue_position: int | None = Field(None, description="While QUEUED: 1 means next")
    progress: ProgressOut | None = Field(None, description="While PROCESSING")
    error: str | None = Field(None, description="Why it FAILED or was CANCELED")
    code: str | None = Field(None, description="Machine-readable reason with `error`")


class RecordOut(StatusOut):
    output: str | None = Field(None, description="Once COMPLETED: an absolute URL of the MP4 (signed; Range works)")
    output_expires_at: datetime | None = Field(None, description="When the MP4 is deleted")
    output_expired_at: datetime | None = Field(None, description="Set once the MP4 has been deleted")
    seed: int | None = Field(None, description="The seed used: send it back for the same clip")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    input: dict[str, Any] = Field(description="The request as it was validated (the image is not echoed)")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start is not None and end is not None else None


def status_of(job: JobView, balance: int, position: int | None) -> dict[str, Any]:
    """A request's status fields, given its key's balance and (while queued) its turn."""
    progress = None
    if job.status is JobStatus.PROCESSING and job.progress_stage is not None:
        progress = ProgressOut(stage=Stage(job.progress_stage), step=job.progress_step or 0,
                               total=job.progress_total or 0, percent=job.progress_percent)
    ended = job.status in (JobStatus.FAILED, JobStatus.CANCELED)
    return {
        "request_id": job.id,
        "status": job.status,
        "metrics": MetricsOut(
            inference_time=job.generation_seconds,
            queue_time=_seconds(job.created_at, job.started_at),
            cost=float(to_dollars(job.price)) if job.status is JobStatus.COMPLETED else 0.0,
            remaining_credits=float(to_dollars(balance)),
            timings=(job.result or {}).get("timings"),
            attempts=job.attempts,
        ),
        "queue_position": position if job.status is JobStatus.QUEUED else None,
        "progress": progress,
        "error": job.error_message if ended else None,
        "code": job.error_code if ended else None,
    }


def record_of(job: JobView, balance: int, position: int | None, links: OutputLinks, base: str) -> RecordOut:
    """The full record; `base` is the server's address as the client sees it (for the output link)."""
    available = job.status is JobStatus.COMPLETED and job.result_key is not None
    return RecordOut(
        **status_of(job, balance, position),
        output=links.url(base, job) if available else None,
        output_expires_at=job.finished_at + links.ttl if available and job.finished_at else None,
        output_expired_at=job.result_expired_at,
        seed=(job.result or {}).get("seed", job.request.get("seed")),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        input=job.request,
    )


def webhook_event(job: JobView, balance: int, links: OutputLinks, public_url: str | None) -> dict[str, Any]:
    """The body POSTed to a request's webhook_url when it ends: its record, named by event."""
    base = job.base_url or public_url or ""
    record = record_of(job, balance, None, links, base).model_dump(mode="json")
    return {"event": f"request.{job.status.lower()}", **record}
