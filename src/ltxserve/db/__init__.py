from .database import Database
from .schema import ApiKey, Base, Job, JobInput, LedgerEntry, WorkerRow, utcnow

__all__ = ["ApiKey", "Base", "Database", "Job", "JobInput", "LedgerEntry", "WorkerRow", "utcnow"]
