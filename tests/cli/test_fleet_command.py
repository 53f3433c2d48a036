"""`ltxserve fleet` refuses what could never work before it contacts Ray (the cluster tests are under
tests/fleet)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def fleet(tmp_path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LTXSERVE_")}
    env.update(LTXSERVE_DATA_DIR=str(tmp_path), COLUMNS="200")
    env.update({f"LTXSERVE_{key.upper()}": value for key, value in settings.items()})
    command = [sys.executable, "-m", "ltxserve", "fleet", *args]
    return subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        ((), {}, "LTXSERVE_DATABASE_URL to a PostgreSQL URL"),
        ((), {"database_url": "postgresql+psycopg://postgres@127.0.0.1:5432/test"}, "LTXSERVE_STORAGE_URL"),
        (("--min-replicas", "3", "--max-replicas", "2"), {}, "min-replicas <= max-replicas"),
        (("--jobs-per-replica", "0"), {}, "jobs-per-replica must be 1 or more"),
    ],
)
def test_deploy_refuses_a_fleet_that_could_not_work(tmp_path, args, settings, message):
    # An address nothing listens on: each of these is refused before Ray is asked anything.
    done = fleet(tmp_path, "deploy", "--ray-address", "127.0.0.1:9", *args, **settings)
    assert done.returncode == 2, done.stderr
    assert message in " ".join(done.stderr.split())


def test_status_without_a_fleet_says_so_and_shows_the_queue(tmp_path):
    done = fleet(tmp_path, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert '"fleet": null' in done.stdout and '"queued": 0' in done.stdout
