from .worker import Worker, WorkerConfig

__all__ = ["Worker", "WorkerConfig"]
