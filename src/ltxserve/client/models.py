"""What the server answers, as typed values (each keeps the JSON it came from in `raw`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("COMPLETED", "FAILED", "CANCELED")


@dataclass(frozen=True)
class Progress:
    stage: str  # the stage running now; the server lists them in order (its OpenAPI schema, ProgressOut)
    step: int
    total: int
    percent: float | None  # of the whole generation

    @classmethod
    def of(cls, data: dict | None) -> Progress | None:
        if not data:
            return None
        return cls(data["stage"], data["step"], data["total"], data.get("percent"))


@dataclass(frozen=True)
class Status:
    request_id: str
    status: str  # QUEUED, PROCESSING, COMPLETED, FAILED, CANCELED
    queue_position: int | None = None
    progress: Progress | None = None
    error: str | None = None
    code: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def of(cls, data: dict) -> Status:
        return cls(data["request_id"], data["status"], data.get("queue_position"), Progress.of(data.get("progress")),
                   data.get("error"), data.get("code"), data.get("metrics") or {}, data)


@dataclass(frozen=True)
class Record(Status):
    """The whole record (`GET /v2/requests/{id}`): the status plus the output link, seed and times."""

    output: str | None = None
    seed: int | None = None

    @property
    def cost(self) -> float:
        return float(self.metrics.get("cost") or 0)

    @classmethod
    def of(cls, data: dict) -> Record:
        status = Status.of(data)
        return cls(**{**status.__dict__, "output": data.get("output"), "seed": data.get("seed")})


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a request: a status change, a progress report, or a new turn in the queue."""

    id: int | None  # None for `queue` events: the turn is not kept in the server's log
    kind: str  # status, progress or queue
    status: str
    progress: Progress | None = None
    error: str | None = None
    queue_position: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def as_status(self, request_id: str) -> Status:
        """The request's status as of this event, as `Request.wait` reports it to `on_progress`."""
        return Status(request_id, self.status, self.queue_position, self.progress, self.error)
