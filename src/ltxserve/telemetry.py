"""Metrics that more than one kind of process exports: the server's /metrics has the generation histogram of
the worker it supervises, and `ltxserve worker --metrics-port` the same histogram for itself."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

GENERATION_BUCKETS = (1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)


def generation_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "ltxserve_generation_seconds",
        "Seconds from a worker starting a job to its result being stored",
        buckets=GENERATION_BUCKETS,
        registry=registry,
    )
