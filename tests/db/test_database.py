"""Opening the SQLite job store from several processes at once."""

from __future__ import annotations

from sqlalchemy import text

from .concurrency import at_once


def test_a_new_sqlite_file_opened_by_many_connections_at_once_never_reports_locked(tmp_path):
    """Switching a new file to WAL made SQLite answer "database is locked" at once, without waiting, to
    about one start in eight of four processes (seen as a failed migration in the full test run)."""
    def opener(modes: list[str]):
        def open_one(database) -> None:
            with database.engine.connect() as connection:
                modes.append(connection.execute(text("PRAGMA journal_mode")).scalar_one())

        return open_one

    for round_ in range(25):
        modes: list[str] = []
        errors = at_once(f"sqlite:///{tmp_path / f'{round_}.db'}", 6, opener(modes))
        assert errors == []
        assert modes == ["wal"] * 6
