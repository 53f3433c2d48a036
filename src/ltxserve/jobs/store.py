"""The job store: the one way to the jobs' database, one concern per part.

    intake    accepting a request (limits, balance, idempotency, the price reserved)
    queue     claim order (fair across keys, by priority) and the leases of running jobs
    records   reading requests back; clips and records expiring
    events    each job's event log
    outbox    webhook deliveries owed
    workers   the workers that could take a job
    fleets    the Ray Serve fleets that start workers as the queue needs them
    notices   who hears of a change: this process's listeners, and other processes through PostgreSQL

Every state change and the money that goes with it is one transaction, made by one of these.
"""

from __future__ import annotations

from ..db import Database
from .eventlog import EventLog
from .fleets import Fleets
from .intake import Intake
from .notices import Notices
from .outbox import Outbox
from .queue import Queue
from .records import Records
from .registry import WorkerRegistry


class JobStore:
    def __init__(self, db: Database, *, lease_s: float = 30.0, max_attempts: int = 3) -> None:
        self.db = db
        self.notices = Notices(db)
        self.intake = Intake(db, self.notices)
        self.queue = Queue(db, self.notices, lease_s=lease_s, max_attempts=max_attempts)
        self.records = Records(db)
        self.events = EventLog(db)
        self.outbox = Outbox(db)
        self.workers = WorkerRegistry(db, lease_s=lease_s)
        self.fleets = Fleets(db)
