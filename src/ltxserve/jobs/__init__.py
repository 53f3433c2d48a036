from .store import ACTIVE, TERMINAL, ClaimedJob, JobStatus, JobStore, JobView

__all__ = ["ACTIVE", "TERMINAL", "ClaimedJob", "JobStatus", "JobStore", "JobView"]
