from .worker import Worker, WorkerConfig, WorkerIdentity

__all__ = ["Worker", "WorkerConfig", "WorkerIdentity"]
