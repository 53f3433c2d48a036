"""The server-side failures, each from a real cause, each answered with its code and never billed:
500 (storage broken), 502 (no worker; a worker killed mid-job), 504 (sync timeout)."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from ltxserve.db import Fleet, utcnow
from ltxserve.jobs import JobStore
from tests.servers import Server

from .client import SMALL, assert_error, credits, generate, submit


@pytest.fixture
def make_server(tmp_path, tiny_models):
    started: list[Server] = []

    def make(name: str, **settings: str) -> Server:
        server = Server(tmp_path / name, tiny_models, settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def test_a_generation_that_fails_on_our_side_is_500_logged_and_not_billed(make_server):
    server = make_server("broken-storage").start()
    api_key = server.create_key("10")
    results = server.root / "results"
    shutil.rmtree(results, ignore_errors=True)
    results.write_text("a file where the results folder should be")

    response = generate(server.base, api_key, SMALL)
    body = assert_error(response, 500, "generation_failed")
    assert "not charged" in body["error"]
    assert credits(server.base, api_key) == 10
    assert server.ledger_kinds(body["request_id"]) == ["reserve", "release"]
    errors = [line for line in server.process.log_lines() if line["level"] == "ERROR"]
    assert any(line["request_id"] == body["request_id"] and "exc_info" in line for line in errors)


def test_no_worker_is_502_and_not_ready(make_server):
    server = make_server("no-worker", embedded_workers="0").start(ready=False)
    assert_error(requests.get(f"{server.base}/readyz", timeout=30), 503, "no_worker")
    api_key = server.create_key("10")
    body = assert_error(generate(server.base, api_key, SMALL), 502, "no_worker")
    assert "nothing was charged" in body["error"]
    assert credits(server.base, api_key) == 10
    off = requests.get(f"{server.base}/admin/keys", headers={"x-api-key": api_key}, timeout=30)
    assert "LTXSERVE_ADMIN_KEY" in assert_error(off, 403, "forbidden")["error"]


def test_a_reporting_fleet_makes_a_server_without_workers_accept_and_queue(make_server):
    server = make_server("fleet-at-zero", embedded_workers="0").start(ready=False)
    api_key = server.create_key("10")
    db = server.database()
    fleets = JobStore(db).fleets
    fleets.deploy("gpus", min_replicas=0, max_replicas=4, jobs_per_replica=1)
    fleets.report("gpus", target=0, replicas=0)
    try:
        ready = requests.get(f"{server.base}/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["workers"] == 0
        assert ready.json()["fleets"][0] | {"reported_at": None} == {
            "name": "gpus", "reporting": True, "reported_at": None, "target": 0, "running": 0, "starting": 0,
            "draining": 0, "min_replicas": 0, "max_replicas": 4, "jobs_per_replica": 1,
        }
        accepted = submit(server.base, api_key, SMALL)
        assert accepted.status_code == 202 and accepted.json()["status"] == "QUEUED"

        # A fleet whose policy stopped reporting (its Ray cluster is gone) will start nothing: 502 again.
        with db.write() as session:
            session.execute(update(Fleet).values(reported_at=utcnow() - timedelta(seconds=31)))
        assert_error(requests.get(f"{server.base}/readyz", timeout=30), 503, "no_worker")
        assert_error(submit(server.base, api_key, SMALL), 502, "no_worker")
    finally:
        db.dispose()


def test_a_request_sent_while_the_embedded_worker_loads_waits_for_it(make_server):
    server = make_server("loading").start(ready=False)
    loading = requests.get(f"{server.base}/readyz", timeout=30)
    assert loading.status_code == 503 and loading.json()["embedded_worker"]["phase"] in ("starting", "loading")

    response = generate(server.base, server.create_key("10"), SMALL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"


def test_a_worker_killed_mid_job_is_502_and_not_billed(make_server):
    server = make_server("killed-worker", embedded_workers="0", lease_s="2", heartbeat_s="0.5", max_attempts="1")
    server.start(ready=False)
    worker = server.worker()
    server.wait("/readyz")
    api_key = server.create_key("10")
    answer: list[requests.Response] = []
    call = threading.Thread(target=lambda: answer.append(generate(server.base, api_key, {**SMALL, "duration": 10})))
    call.start()
    deadline = time.monotonic() + 60
    while "PROCESSING" not in server.job_statuses():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    worker.kill()
    call.join(60)
    body = assert_error(answer[0], 502, "worker_lost")
    assert "not charged" in body["error"]
    assert credits(server.base, api_key) == 10
    assert server.ledger_kinds(body["request_id"]) == ["reserve", "release"]


def test_a_generation_over_the_sync_timeout_is_504_and_not_billed(make_server):
    server = make_server("short-timeout", sync_timeout_s="1").start()
    api_key = server.create_key("10")
    started = time.monotonic()
    body = assert_error(generate(server.base, api_key, {**SMALL, "duration": 10}), 504, "timeout")
    assert time.monotonic() - started < 5
    assert "1 s" in body["error"] and "not charged" in body["error"]
    assert credits(server.base, api_key) == 10
    assert server.ledger_kinds(body["request_id"]) == ["reserve", "release"]
    # The worker stops the canceled job at its next step and is free again for the next request.
    deadline = time.monotonic() + 30
    while "PROCESSING" in server.job_statuses():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not (server.root / "results" / f"{body['request_id']}.mp4").exists()


def _jobs_of(server: Server) -> list:
    from sqlalchemy import select

    from ltxserve.db import Job

    db = server.database()
    try:
        with db.read() as session:
            return list(session.execute(select(Job.id, Job.status, Job.error_code)))
    finally:
        db.dispose()


@pytest.mark.parametrize("leaves_while", ["PROCESSING", "QUEUED"])
def test_a_sync_client_that_leaves_is_not_charged_and_its_job_stops(make_server, leaves_while):
    """Before, the job ran on and was billed to a client that would never get the clip."""
    import json
    import socket

    server = make_server("leaving", lease_s="2", heartbeat_s="0.5").start()
    api_key = server.create_key("10", concurrency_limit=5)
    if leaves_while == "QUEUED":  # keep the worker busy with another request first
        blocker = threading.Thread(target=generate, args=(server.base, api_key, {**SMALL, "duration": 10}))
        blocker.start()
        deadline = time.monotonic() + 60
        while not any(job.status == "PROCESSING" for job in _jobs_of(server)):
            assert time.monotonic() < deadline
            time.sleep(0.05)

    body = json.dumps({**SMALL, "duration": 10}).encode()
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(
        b"POST /v1/ltx-2-fast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"x-api-key: {api_key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    deadline = time.monotonic() + 60
    while True:
        jobs = _jobs_of(server)
        mine = [job for job in jobs if job.status == leaves_while and (leaves_while == "PROCESSING" or len(jobs) > 1)]
        if mine:
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.05)
    job_id = mine[-1].id
    client.close()

    while (job := next(job for job in _jobs_of(server) if job.id == job_id)).status in ("QUEUED", "PROCESSING"):
        assert time.monotonic() < deadline + 60, job
        time.sleep(0.05)
    assert (job.status, job.error_code) == ("CANCELED", "client_disconnected")
    assert server.ledger_kinds(job_id) == ["reserve", "release"]
    if leaves_while == "QUEUED":
        blocker.join(120)
    # The worker is free for the next request at once.
    assert generate(server.base, api_key, SMALL).status_code == 200
