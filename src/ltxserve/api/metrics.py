"""Prometheus metrics on a registry of the app's own (several apps can live in one test process).

Queue depth and credits charged are read from the job store at scrape time, so they are right however
many server and worker processes share it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..billing.prices import to_dollars
from ..jobs import JobStore
from ..workers.metrics import generation_histogram


class _StoreCollector:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    def describe(self):
        # Without this the registry would call collect() at registration, before the schema exists.
        return [
            GaugeMetricFamily("ltxserve_queue_depth", ""),
            GaugeMetricFamily("ltxserve_live_workers", ""),
            CounterMetricFamily("ltxserve_credits_charged_dollars", ""),
        ]

    def collect(self):
        yield GaugeMetricFamily("ltxserve_queue_depth", "Jobs waiting for a worker", value=self._store.queue.depth())
        yield GaugeMetricFamily(
            "ltxserve_live_workers", "Workers heartbeating within one lease", value=self._store.workers.live()
        )
        yield CounterMetricFamily(
            "ltxserve_credits_charged_dollars",
            "Credits captured for successful generations, in US dollars",
            value=float(to_dollars(self._store.records.captured_total())),
        )


class Metrics:
    def __init__(self, store: JobStore) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ltxserve_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        # Observed for the worker process this server supervises; `ltxserve worker --metrics-port` serves
        # the same histogram for each worker of its own.
        self.generation_seconds = generation_histogram(self.registry)
        self.registry.register(_StoreCollector(store))

    def render(self) -> bytes:
        return generate_latest(self.registry)
