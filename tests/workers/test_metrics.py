"""A worker process's own metrics."""

from __future__ import annotations

from types import SimpleNamespace

from ltxserve.workers.metrics import WorkerMetrics


def test_busy_and_store_available_follow_the_worker():
    metrics, worker = WorkerMetrics(), SimpleNamespace(current_job=None, problem=None)
    metrics.watch(worker)  # type: ignore[arg-type]
    assert metrics.registry.get_sample_value("ltxserve_worker_busy") == 0
    assert metrics.registry.get_sample_value("ltxserve_worker_store_available") == 1
    worker.current_job, worker.problem = "job-1", "the job store does not answer"
    assert metrics.registry.get_sample_value("ltxserve_worker_busy") == 1
    assert metrics.registry.get_sample_value("ltxserve_worker_store_available") == 0
