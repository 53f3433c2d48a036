"""Opening the SQLite job store from several processes at once."""

from __future__ import annotations

import threading

from sqlalchemy import text

from ltxserve.db import Database


def test_a_new_sqlite_file_opened_by_many_connections_at_once_never_reports_locked(tmp_path):
    """Switching a new file to WAL made SQLite answer "database is locked" at once, without waiting, to
    about one start in eight of four processes (seen as a failed migration in the full test run)."""
    for round_ in range(25):
        url = f"sqlite:///{tmp_path / f'{round_}.db'}"
        databases = [Database(url) for _ in range(6)]
        start = threading.Barrier(len(databases))
        errors: list[BaseException] = []
        modes: list[str] = []

        def open_one(database: Database) -> None:
            start.wait()
            try:
                with database.engine.connect() as connection:
                    modes.append(connection.execute(text("PRAGMA journal_mode")).scalar_one())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one, args=(database,)) for database in databases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for database in databases:
            database.dispose()
        assert errors == []
        assert modes == ["wal"] * len(databases)
