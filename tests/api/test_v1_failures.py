"""The server-side failures, each from a real cause, each answered with its code and never billed:
500 (storage broken), 502 (no worker; a worker killed mid-job), 504 (sync timeout)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
import requests

from tests.servers import Server

from .client import SMALL, assert_error, credits, generate


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
