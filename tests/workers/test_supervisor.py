"""The embedded worker runs in a process of its own that `ltxserve serve` supervises: the API never loads
PyTorch, a dead worker is replaced, and a worker rides out a database outage instead of dying."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.api.client import SMALL, submit, wait_for, wait_for_progress
from tests.servers import Server

from .pg import PrivatePostgres

QUIET = {**SMALL, "generate_audio": False}
FAST_LEASES = {"lease_s": "2", "heartbeat_s": "0.5", "worker_poll_s": "0.2"}
ML_LIBRARIES = ("torch", "diffusers", "transformers")


def _imported(log: str) -> set[str]:
    """Top-level modules named in a `PYTHONPROFILEIMPORTTIME` log."""
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def _readyz(server: Server) -> requests.Response:
    return requests.get(f"{server.base}/readyz", timeout=30)


def _poll(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_key_commands_and_an_api_only_server_never_import_pytorch(tmp_path, tiny_models):
    server = Server(tmp_path / "api", tiny_models, {"embedded_workers": "0"}, {"PYTHONPROFILEIMPORTTIME": "1"})
    done = subprocess.run([sys.executable, "-m", "ltxserve", "keys", "list"], check=False, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not _imported(done.stderr) & set(ML_LIBRARIES)
    assert "sqlalchemy" in _imported(done.stderr)  # the log is read right

    try:
        server.start(ready=False)
        assert requests.get(f"{server.base}/v1/pricing", timeout=30).status_code == 200
        assert requests.post(f"{server.base}/v1/ltx-2-fast", json=QUIET, headers={"x-api-key": "ltx_x"},
                             timeout=30).status_code == 401
    finally:
        server.stop()
    assert not _imported(server.log()) & set(ML_LIBRARIES)


def _libraries_mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_embedded_worker_is_a_process_of_its_own_and_is_replaced_when_it_dies(tmp_path, tiny_models):
    server = Server(tmp_path / "embedded", tiny_models, FAST_LEASES)
    try:
        server.start()
        embedded = _readyz(server).json()["embedded_worker"]
        assert embedded["phase"] == "ready" and embedded["restarts"] == 0
        worker_pid = embedded["pid"]
        assert worker_pid != server.process.proc.pid
        assert "libtorch" in _libraries_mapped(worker_pid)
        assert "libtorch" not in _libraries_mapped(server.process.proc.pid)

        api_key = server.create_key("10", concurrency_limit=5)
        running = submit(server.base, api_key, {**QUIET, "duration": 10}).json()["request_id"]
        wait_for_progress(server.base, api_key, running)
        os.kill(worker_pid, signal.SIGKILL)  # as a crash in PyTorch or a GPU driver would end it

        # The API stays up throughout, and says what happened.
        restarted = _poll(lambda: (e := _readyz(server).json().get("embedded_worker")) and e["restarts"] == 1 and e,
                          60, "the worker to be restarted")
        assert "exited with code -9" in (restarted["error"] or "") or restarted["phase"] == "ready"
        ended = wait_for(server.base, api_key, running, "COMPLETED", "FAILED", timeout_s=180)
        assert ended["status"] == "COMPLETED" and ended["metrics"]["attempts"] == 2
        assert server.ledger_kinds(running) == ["reserve", "capture"]
        after = _readyz(server).json()["embedded_worker"]
        assert after["phase"] == "ready" and after["pid"] != worker_pid
        assert server.process.proc.poll() is None
    finally:
        server.stop()


@pytest.fixture
def private_postgres():
    database = PrivatePostgres()
    database.start()
    yield database
    database.remove()


def test_a_worker_rides_out_a_database_restart(tmp_path, tiny_models, private_postgres):
    """Before, one failed query ended the worker loop for good; now it backs off, says why, and resumes."""
    server = Server(tmp_path / "outage", tiny_models, {"database_url": private_postgres.url, **FAST_LEASES})
    try:
        server.start()
        worker_pid = _readyz(server).json()["embedded_worker"]["pid"]

        private_postgres.stop()
        # (A Response is falsy when its status is not OK: the condition hands back the body.)
        down = _poll(lambda: (r := _readyz(server)).status_code == 503 and r.json()["embedded_worker"]["error"]
                     and r.json(), 60, "the worker to report the outage")
        assert down["code"] == "database_unavailable"
        assert "job store does not answer" in down["embedded_worker"]["error"]

        private_postgres.start()
        up = _poll(lambda: (r := _readyz(server)).status_code == 200 and r.json()["embedded_worker"]["error"] is None
                   and r.json(), 90, "the worker to recover")
        embedded = up["embedded_worker"]
        assert (embedded["pid"], embedded["restarts"]) == (worker_pid, 0), "the same worker process carried on"

        api_key = server.create_key("10")
        job = submit(server.base, api_key, QUIET).json()["request_id"]
        assert wait_for(server.base, api_key, job, "COMPLETED", "FAILED", timeout_s=120)["status"] == "COMPLETED"
        log = server.log()
        assert "job store unavailable; retrying" in log and "job store answers again" in log
    finally:
        server.stop()
