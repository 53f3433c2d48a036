"""Errors a caller can act on. Each carries a sentence that says what to fix and a stable code.

The HTTP layer maps these classes to status codes in one place; nothing else needs to know them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .billing.prices import format_dollars


class LtxServeError(Exception):
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldIssue:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidRequest(LtxServeError):
    """The request's parameters or body are wrong; `details` names every invalid field."""

    code = "invalid_request"

    def __init__(self, details: list[FieldIssue]) -> None:
        self.details = details
        summary = "; ".join(f"{issue.field}: {issue.message}" for issue in details)
        super().__init__(f"Invalid request. {summary}")


class ImageRejected(InvalidRequest):
    """The `image` could not be used: a refused address, a failed download, or not a readable image."""

    code = "invalid_image"

    def __init__(self, message: str) -> None:
        super().__init__([FieldIssue("image", message)])


class Unauthorized(LtxServeError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"


class Forbidden(LtxServeError):
    """The key is valid but lacks the scope this request needs."""

    code = "forbidden"


class NotFound(LtxServeError):
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class InsufficientCredits(LtxServeError):
    code = "insufficient_credits"

    @classmethod
    def for_price(cls, price: int, available: int) -> InsufficientCredits:
        """Amounts in micro-dollars."""
        return cls(
            f"Insufficient credits: this request costs ${format_dollars(price)} and the key has "
            f"${format_dollars(available)} left. Add credits or ask for a shorter or smaller clip."
        )


class RateLimited(LtxServeError):
    code = "rate_limited"

    # Seconds a client is told to wait when its key already runs as many generations as it may.
    CONCURRENCY_RETRY_AFTER_S = 5

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

    @classmethod
    def at_concurrency(cls, active: int) -> RateLimited:
        return cls(
            f"This key already has {active} generation(s) queued or running, its limit. Retry when one finishes.",
            cls.CONCURRENCY_RETRY_AFTER_S,
        )


class NoWorkerAvailable(LtxServeError):
    """No live worker is registered, so an accepted job could never start."""

    code = "no_worker"


class WorkerLost(LtxServeError):
    """Workers died under the job as many times as it may be tried."""

    code = "worker_lost"

    @classmethod
    def after(cls, attempts: int, allowed: int) -> WorkerLost:
        return cls(
            f"The worker running this job stopped responding, {attempts} time(s) out of {allowed} allowed. "
            "You were not charged."
        )


class GenerationFailed(LtxServeError):
    """The generation failed on our side; the details are in the log under the request id."""

    code = "generation_failed"


class SyncTimeout(LtxServeError):
    code = "timeout"


class Conflict(LtxServeError):
    """The request contradicts the state of what it names (an idempotency key, a finished job)."""

    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    @classmethod
    def for_key(cls, idempotency_key: str, earlier_id: str) -> IdempotencyConflict:
        return cls(
            f"The Idempotency-Key {idempotency_key!r} was already used for request {earlier_id} with a "
            "different body. Use a new key for a new request."
        )


class Gone(LtxServeError):
    """The result existed but has been deleted after its retention time."""

    code = "expired"


class RequestNotFound(NotFound):
    """No such request for this key (another key's request is reported the same way)."""

    code = "request_not_found"

    @classmethod
    def for_id(cls, request_id: str) -> RequestNotFound:
        return cls(f"No request {request_id!r} was made with this API key.")


class NotReady(Conflict):
    code = "not_ready"


class NotCancelable(Conflict):
    code = "not_cancelable"


class ClientDisconnected(LtxServeError):
    """The client closed the connection; nobody is left to answer (logged as 499, as nginx does)."""

    code = "client_disconnected"

    def __init__(self) -> None:
        super().__init__("The client closed the connection.")
