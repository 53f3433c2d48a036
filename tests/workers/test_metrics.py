"""A worker process's own metrics."""

from __future__ import annotations

from types import SimpleNamespace

from ltxserve.workers.metrics import WorkerMetrics


def test_busy_follows_the_job_in_hand():
    metrics, worker = WorkerMetrics(), SimpleNamespace(current_job=None)
    metrics.watch(worker)  # type: ignore[arg-type]
    assert metrics.registry.get_sample_value("ltxserve_worker_busy") == 0
    worker.current_job = "job-1"
    assert metrics.registry.get_sample_value("ltxserve_worker_busy") == 1
