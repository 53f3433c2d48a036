"""A worker carries out the order intake made, unchanged; an order of a version it does not know (a fleet
mid-upgrade shares one queue) fails that job clearly and unbilled, and the worker goes on serving."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from sqlalchemy import select

from ltxserve.api.schemas import GenerationRequest
from ltxserve.billing import keys
from ltxserve.db import LedgerEntry
from ltxserve.jobs import TERMINAL, JobStatus, JobStore
from ltxserve.order import ORDER_VERSION
from ltxserve.storage import LocalStorage
from ltxserve.workers import Worker, WorkerConfig

PRICE = 250_000


def _submit(store: JobStore, key, job_id: str, order: dict) -> None:
    store.intake.submit(key, job_id=job_id, model="ltx-2-fast", request={"prompt": "p"}, order=order, price=PRICE,
                        concurrency_limit=10)


def _ended(store: JobStore, job_ids: list[str], timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = {job_id: store.records.get(job_id) for job_id in job_ids}
        if all(job.status in TERMINAL for job in jobs.values()):
            return jobs
        time.sleep(0.1)
    raise TimeoutError(f"{job_ids} did not end within {timeout_s} s")


def test_an_order_of_an_unknown_version_fails_unbilled_and_the_worker_serves_on(db, engine, tmp_path):
    store = JobStore(db, lease_s=30, max_attempts=2)
    key = keys.create_key(db, credits=Decimal(1)).info
    order = GenerationRequest(prompt="waves", resolution="1080p", duration=6, seed=3).to_order(price=PRICE).to_json()
    _submit(store, key, "from-the-future", {**order, "version": ORDER_VERSION + 1, "keyframes": [{"frame": 9}]})
    _submit(store, key, "queued-before-orders", None)
    _submit(store, key, "today", order)
    worker = Worker(store, engine, LocalStorage(tmp_path / "results"), WorkerConfig(tmp_path / "work", poll_s=0.1),
                    model_name="tiny")
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop,))
    loop.start()
    try:
        jobs = _ended(store, ["from-the-future", "queued-before-orders", "today"])
    finally:
        stop.set()
        worker.wake()
        loop.join(60)
    for refused, version in (("from-the-future", ORDER_VERSION + 1), ("queued-before-orders", None)):
        job = jobs[refused]
        assert (job.status, job.error_code) == (JobStatus.FAILED, "unsupported_order")
        assert f"order version {version} is not one this worker knows" in job.error_message
        assert "You were not charged" in job.error_message
    assert jobs["today"].status is JobStatus.COMPLETED
    assert jobs["today"].result["seed"] == 3 and jobs["today"].result["num_frames"] == 150
    with db.read() as session:
        kinds = session.execute(select(LedgerEntry.job_id, LedgerEntry.kind).order_by(LedgerEntry.id)).all()
    assert [kind for job_id, kind in kinds if job_id == "from-the-future"] == ["reserve", "release"]
    assert [kind for job_id, kind in kinds if job_id == "today"] == ["reserve", "capture"]
    assert keys.balance(db, key.id) == 1_000_000 - PRICE
