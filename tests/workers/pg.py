"""A PostgreSQL of the test's own, which the test may stop and start: the shared one must stay up."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.servers import free_port

BIN = max(Path("/usr/lib/postgresql").glob("*/bin"))


class PrivatePostgres:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and PostgreSQL runs as `postgres`.
        self.dir = Path(tempfile.mkdtemp(prefix="ltxserve-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(f"{BIN}/initdb -D {self.data} -A trust -U postgres --no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(f"{BIN}/pg_ctl -D {self.data} -o '{options}' -l {self.dir}/log -w start")

    def stop(self) -> None:
        self._as_postgres(f"{BIN}/pg_ctl -D {self.data} -m fast -w stop")

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{BIN}/pg_ctl -D {self.data} -m immediate stop"],
                       check=False, capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
