"""kill -9 in the middle of the work: no job is lost, none is charged twice, only finished clips are billed.

On PostgreSQL with a worker process beside the server (the scale-out shape), and on the embedded
default (SQLite, the worker inside the server)."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from ltxserve.db import Job, LedgerEntry
from tests.servers import Server

from .client import SMALL, credits, status, submit, wait_for, wait_for_progress

QUIET = {**SMALL, "generate_audio": False}


@pytest.mark.parametrize("shape", ["postgresql-worker-process", "sqlite-embedded"])
def test_kill_9_of_worker_and_server_loses_no_job_and_bills_only_finished_clips(shape, tmp_path, tiny_models,
                                                                                 request):
    leases = {"lease_s": "2", "heartbeat_s": "0.5", "worker_poll_s": "0.2"}
    if shape == "postgresql-worker-process":
        settings = {"database_url": request.getfixturevalue("pg_url"), "embedded_workers": "0", **leases}
    else:
        settings = leases
    server = Server(tmp_path / "crash", tiny_models, settings)
    separate = settings.get("embedded_workers") == "0"
    try:
        if separate:
            server.worker()
        server.start()
        api_key = server.create_key("10", concurrency_limit=10)

        stored = submit(server.base, api_key, QUIET).json()["request_id"]
        wait_for(server.base, api_key, stored, "COMPLETED")
        clip = requests.get(f"{server.base}/v2/requests/{stored}/output", headers={"x-api-key": api_key}, timeout=30)
        assert clip.status_code == 200

        pending = [submit(server.base, api_key, {**QUIET, "duration": 10}).json()["request_id"] for _ in range(4)]
        wait_for_progress(server.base, api_key, pending[0])
        assert status(server.base, api_key, pending[1]).json()["status"] == "QUEUED"

        if separate:
            server.workers[-1].kill()
        server.process.kill()

        if separate:
            server.worker()
        server.start()
        ended = {rid: wait_for(server.base, api_key, rid, "COMPLETED", "FAILED", timeout_s=300) for rid in pending}
        assert all(body["status"] == "COMPLETED" for body in ended.values()), ended
        assert ended[pending[0]]["metrics"]["attempts"] == 2, "the job running at the crash ran again"

        again = requests.get(f"{server.base}/v2/requests/{stored}/output", headers={"x-api-key": api_key}, timeout=30)
        assert again.content == clip.content, "a result stored before the crash stays downloadable"

        db = server.database()
        with db.read() as session:
            jobs = session.execute(select(Job.id, Job.status, Job.price)).all()
            captured = session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == "capture"))
        db.dispose()
        assert {job.id for job in jobs} == {stored, *pending}, "no job lost, none made up"
        assert captured == sum(job.price for job in jobs if job.status == "COMPLETED")
        for job in jobs:
            kinds = server.ledger_kinds(job.id)
            assert kinds == (["reserve", "capture"] if job.status == "COMPLETED" else ["reserve", "release"])
        assert credits(server.base, api_key) == pytest.approx(10 - 0.3 - 4 * 0.5)
    finally:
        server.stop()
