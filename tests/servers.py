"""Real ltxserve processes for the tests: `python -m ltxserve serve` / `worker` on a random loopback port,
each with its own data folder, talking to the test over HTTP and a database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import create_engine, select, text

from ltxserve.billing import keys
from ltxserve.db import Database, Job, LedgerEntry

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgSchema:
    """A schema of its own in the shared `test` database, dropped afterwards, so runs never collide."""

    def __init__(self) -> None:
        self.name = f"ltx_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {self.name}"))
        self.url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {self.name} CASCADE"))
        self._admin.dispose()


@dataclass
class Process:
    root: Path
    env: dict[str, str]
    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Process:
        self.log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ltxserve", *self.args], env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@dataclass
class Server:
    """One `ltxserve serve` with its settings; `worker()` adds a `ltxserve worker` on the same database."""

    root: Path
    models: Path
    settings: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # not settings: PYTHON* and the like
    process: Process | None = None
    workers: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "models").symlink_to(self.models, target_is_directory=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LTXSERVE_")}
        env.update(
            HF_HUB_OFFLINE="1",
            LTXSERVE_DATA_DIR=str(self.root),
            LTXSERVE_PORT=str(self.port),
            LTXSERVE_VIDEO_PRESET="ultrafast",
            LTXSERVE_ALLOW_LOOPBACK_URLS="true",
        )
        env.update({f"LTXSERVE_{key.upper()}": value for key, value in self.settings.items()})
        env.update(self.extra_env)
        return env

    @property
    def database_url(self) -> str:
        return self.settings.get("database_url") or f"sqlite:///{self.root / 'ltxserve.db'}"

    def database(self) -> Database:
        return Database(self.database_url)

    def start(self, ready: bool = True) -> Server:
        self.process = Process(self.root, self.env, ["serve"], self.root / "server.log").start()
        self.wait("/readyz" if ready else "/healthz")
        return self

    def worker(self, **settings: str) -> Process:
        env = {**self.env, **{f"LTXSERVE_{key.upper()}": value for key, value in settings.items()}}
        worker = Process(self.root, env, ["worker"], self.root / f"worker{len(self.workers)}.log").start()
        self.workers.append(worker)
        return worker

    def wait(self, path: str, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.proc.returncode}):\n{self.log()}")
            try:
                if requests.get(self.base + path, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.base}{path} not ready in {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return (self.root / "server.log").read_text()

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ltxserve", *args], check=False, env=self.env, capture_output=True, text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_key(self, credits: str = "10", scopes=("ltx-2-fast",), **limits: int) -> str:
        db = self.database()
        try:
            return keys.create_key(db, credits=Decimal(credits), scopes=scopes, **limits).secret
        finally:
            db.dispose()

    def ledger_kinds(self, job_id: str) -> list[str]:
        """The kinds of the job's ledger entries, in the order they were written."""
        db = self.database()
        try:
            with db.read() as session:
                query = select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
                return list(session.scalars(query))
        finally:
            db.dispose()

    def job_statuses(self) -> set[str]:
        db = self.database()
        try:
            with db.read() as session:
                return set(session.scalars(select(Job.status)))
        finally:
            db.dispose()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.process is not None:
            self.process.stop()


@contextmanager
def on_postgresql(root: Path, models: Path, settings: dict[str, str]) -> Iterator[Server]:
    """A started server on a PostgreSQL schema of its own; stopped, and the schema dropped, afterwards."""
    schema = PgSchema()
    try:
        running = Server(root, models, {**settings, "database_url": schema.url}).start()
        try:
            yield running
        finally:
            running.stop()
    finally:
        schema.drop()
