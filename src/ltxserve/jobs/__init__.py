"""Jobs: the queue every worker claims from, and everything a request leaves in the database."""

from .model import ACTIVE, TERMINAL, ClaimedJob, Event, JobStatus, JobView
from .store import JobStore

__all__ = ["ACTIVE", "TERMINAL", "ClaimedJob", "Event", "JobStatus", "JobStore", "JobView"]
