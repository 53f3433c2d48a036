"""Connections to the job store: a SQLite file by default, PostgreSQL by URL, migrated by Alembic."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number: PostgreSQL advisory locks are named by integers, database-wide.
_MIGRATION_LOCK = 0x6C7478_6D6967

# What the job store raises while its database cannot be reached: the driver's errors, as SQLAlchemy
# wraps them, and the operating system's.
STORE_ERRORS = (SQLAlchemyError, OSError)


class Database:
    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # Pools as large as the request threads that use them (anyio's 40): with 10, every burst opened and
        # closed connections (SQLite re-reads the schema on each), and 50 pollers got 77 status answers a
        # second instead of 99. PostgreSQL's connections are a shared budget: at most 30 per process.
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(self.url, connect_args={"timeout": 30}, pool_size=40, max_overflow=10)
            _serialise_sqlite_writes(self.engine)
        else:
            self.engine = create_engine(self.url, pool_size=20, max_overflow=10, pool_pre_ping=True)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already).

        Servers and workers all migrate at start-up, often at the same moment: the migration holds a lock
        for its whole transaction (an advisory lock on PostgreSQL, the write lock on SQLite), so the
        others wait and then find the schema current."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as connection:
            if not self.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits on success. On SQLite it holds the write lock from its first
        statement (BEGIN IMMEDIATE), so check-then-insert sequences cannot interleave; on PostgreSQL the
        same sequences lock the rows they depend on (SELECT ... FOR UPDATE)."""
        with self._writer.begin() as session:
            yield session

    def listen(self, channel: str, on_notify: Callable[[str], None], stop: threading.Event,
               on_connected: Callable[[], None] | None = None) -> None:
        """PostgreSQL only: call `on_notify(payload)` for each NOTIFY on `channel` until `stop` is set. Runs
        on a connection of its own, reconnecting after a loss (`on_connected` is called each time it is
        listening again: what was sent meanwhile was missed); meant for a thread of its own."""
        while not stop.is_set():
            try:
                raw = self.engine.raw_connection()
                connection = raw.driver_connection
                assert connection is not None
                raw.detach()  # kept out of the pool: it stays in LISTEN for good
                connection.autocommit = True
                connection.execute(f"LISTEN {channel}")
                if on_connected is not None:
                    on_connected()
                try:
                    while not stop.is_set():
                        for notice in connection.notifies(timeout=1.0):
                            on_notify(notice.payload)
                finally:
                    connection.close()
            except Exception:
                log.warning("listening for %s failed; polling until it is back", channel, exc_info=True)
                stop.wait(5.0)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _serialise_sqlite_writes(engine: Engine) -> None:
    # pysqlite's own transaction handling cannot emit BEGIN IMMEDIATE; SQLAlchemy's documented recipe
    # turns it off and emits BEGIN itself.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _enable_wal(cursor, wait_s: float = 30.0) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself for a moment, and SQLite
    answers "database is locked" at once, without waiting out the busy timeout, while another connection
    holds it: exactly what happens when a server and its workers open a new file together."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
