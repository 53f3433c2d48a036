from .database import STORE_ERRORS, Database
from .schema import (
    ApiKey,
    Base,
    Fleet,
    Job,
    JobEvent,
    JobInput,
    LedgerEntry,
    ServerSecret,
    Webhook,
    WebhookAttempt,
    WorkerRow,
    utcnow,
)

__all__ = [
    "STORE_ERRORS",
    "ApiKey",
    "Base",
    "Database",
    "Fleet",
    "Job",
    "JobEvent",
    "JobInput",
    "LedgerEntry",
    "ServerSecret",
    "Webhook",
    "WebhookAttempt",
    "WorkerRow",
    "utcnow",
]
