from .database import Database
from .schema import (
    ApiKey,
    Base,
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
    "ApiKey",
    "Base",
    "Database",
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
