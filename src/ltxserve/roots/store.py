"""The job store, as every kind of process opens it."""

from __future__ import annotations

from ..config import Settings
from ..db import Database
from ..jobs import JobStore


def open_store(settings: Settings, *, migrate: bool = True) -> JobStore:
    """The job store of `settings`' database. Migrating is safe from many processes at once; a server does it
    in its lifespan instead (`migrate=False`), off the thread that builds the app."""
    db = Database(settings.database)
    if migrate:
        db.migrate()
    return JobStore(db, lease_s=settings.lease_s, max_attempts=settings.max_attempts)
