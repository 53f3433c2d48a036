"""Prometheus metrics on a registry of the app's own (several apps can live in one test process).

Queue depth and credits charged are read from the job store at scrape time, so they are right however
many server and worker processes share it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..billing.prices import to_dollars
from ..jobs import JobStore
from ..telemetry import generation_histogram

# Seconds: a replica starting on a warm node with a model in its page cache, up to a GPU node provisioned
# and a 40 GB checkpoint read from network storage.
COLD_START_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)


class _StoreCollector:
    def __init__(self, store: JobStore) -> None:
        self._store = store

    def describe(self):
        # Without this the registry would call collect() at registration, before the schema exists.
        return [
            GaugeMetricFamily("ltxserve_queue_depth", ""),
            GaugeMetricFamily("ltxserve_live_workers", ""),
            CounterMetricFamily("ltxserve_credits_charged_dollars", ""),
            GaugeMetricFamily("ltxserve_queue_oldest_seconds", ""),
            GaugeMetricFamily("ltxserve_fleet_replicas", ""),
            HistogramMetricFamily("ltxserve_cold_start_seconds", ""),
        ]

    def collect(self):
        demand = self._store.queue.demand()
        yield GaugeMetricFamily("ltxserve_queue_depth", "Jobs waiting for a worker", value=demand.queued)
        yield GaugeMetricFamily(
            "ltxserve_queue_oldest_seconds", "How long the oldest queued job has waited",
            value=demand.oldest_queued_s or 0,
        )
        yield GaugeMetricFamily(
            "ltxserve_live_workers", "Workers heartbeating within one lease", value=self._store.workers.live()
        )
        yield CounterMetricFamily(
            "ltxserve_credits_charged_dollars",
            "Credits captured for successful generations, in US dollars",
            value=float(to_dollars(self._store.records.captured_total())),
        )
        replicas = GaugeMetricFamily(
            "ltxserve_fleet_replicas",
            "Replicas of each Ray Serve fleet: running (model loaded; draining: taking no new job), starting, "
            "and the autoscaler's target",
            labels=["fleet", "state"],
        )
        for summary in self._store.fleets.summaries(self._store.workers):
            for state in ("running", "starting", "draining", "target"):
                replicas.add_metric([summary["name"], state], summary[state])
        yield replicas
        within, count, total = self._store.records.cold_starts(COLD_START_BUCKETS)
        yield HistogramMetricFamily(
            "ltxserve_cold_start_seconds",
            "Requests accepted while no worker was live, from acceptance to the first claim (requests on record)",
            buckets=[*((str(bound), n) for bound, n in zip(COLD_START_BUCKETS, within, strict=True)), ("+Inf", count)],
            sum_value=total,
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
