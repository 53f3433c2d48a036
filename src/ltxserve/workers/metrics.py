"""A worker process's own Prometheus metrics (`ltxserve worker --metrics-port`): what only the worker
knows. The server's /metrics has the same generation histogram for its supervised worker, and everything
the job store knows (queue depth, live workers, credits) for all of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from ..telemetry import generation_histogram

if TYPE_CHECKING:
    from .worker import Worker


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.generation_seconds = generation_histogram(self.registry)
        self.store_available = Gauge(
            "ltxserve_worker_store_available", "1 while the job store answers this worker, 0 while it does not",
            registry=self.registry,
        )
        self.store_available.set(1)  # until `watch`: nothing has failed while the model loads
        self.busy = Gauge("ltxserve_worker_busy", "1 while this worker has a job in hand", registry=self.registry)

    def watch(self, worker: Worker) -> None:
        """Read at each scrape from what the worker says of itself."""
        self.store_available.set_function(lambda: 1 if worker.problem is None else 0)
        self.busy.set_function(lambda: 0 if worker.current_job is None else 1)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on a thread; returns the port (useful with 0)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port
