"""Schemathesis against the served OpenAPI, on PostgreSQL (the stricter database): generated and mutated
requests to every operation, stateful sequences, and its conformance checks. The bar is 0 server errors
and 0 conformance failures. A key with no credits keeps generation endpoints at 406, so nothing
generates; the admin API gets a pass of its own with the admin key."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.servers import Server, on_postgresql

from .conftest import ADMIN_KEY


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    with on_postgresql(tmp_path_factory.mktemp("fuzz"), tiny_models, {"admin_key": ADMIN_KEY}) as running:
        yield running


def _schemathesis(server: Server, api_key: str, seconds: int, reports) -> str:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.base}/openapi.json", "-H", f"x-api-key: {api_key}",
         "--max-examples", "30", "--seed", "1", "--max-time", str(seconds), "--request-timeout", "20",
         "--report", "junit", "--report-dir", str(reports), "--no-color"],
        # Its own folder: schemathesis replays the failures it cached in the working directory, and a
        # run must not depend on what an earlier one left there.
        cwd=reports, check=False, capture_output=True, text=True, timeout=seconds + 180,
    )
    summary = re.search(r"Test cases:\s*\n\s*(.+)", done.stdout)
    print(f"schemathesis ({time.monotonic() - started:.0f} s): {summary.group(1) if summary else '?'}")
    assert done.returncode == 0, done.stdout[-6000:]
    return done.stdout


@pytest.mark.timeout(600)
def test_no_server_error_and_no_conformance_failure_for_a_client(server, tmp_path):
    output = _schemathesis(server, server.create_key("0"), 75, tmp_path)
    assert "Test cases:" in output and " passed" in output


@pytest.mark.timeout(600)
def test_no_server_error_and_no_conformance_failure_for_the_operator(server, tmp_path):
    output = _schemathesis(server, ADMIN_KEY, 45, tmp_path)
    assert "Test cases:" in output and " passed" in output
