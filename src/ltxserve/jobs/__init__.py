"""Jobs: the queue every worker claims from, and everything a request leaves in the database."""

from .model import ACTIVE, IMAGE, TERMINAL, ClaimedJob, Event, JobStatus, JobView
from .store import JobStore

__all__ = ["ACTIVE", "IMAGE", "TERMINAL", "ClaimedJob", "Event", "JobStatus", "JobStore", "JobView"]
