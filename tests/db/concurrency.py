"""Several `Database` objects (as several processes would hold) acting at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ltxserve.db import Database


def at_once(url: str, count: int, action: Callable[[Database], None]) -> list[BaseException]:
    """Run `action` on `count` fresh Databases for `url`, released together by a barrier; the errors raised."""
    databases = [Database(url) for _ in range(count)]
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(database: Database) -> None:
        start.wait()
        try:
            action(database)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(database,)) for database in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in databases:
        database.dispose()
    return errors
