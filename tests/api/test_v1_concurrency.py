"""Fifty requests at once from a key that can afford ten: ten clips, forty refusals, never overspent.
On both job-store databases."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from ltxserve.db import LedgerEntry
from tests.servers import Server

from .client import SMALL, assert_error, credits, generate

SIGNS = {"grant": 1, "reserve": -1, "release": 1, "capture": 0}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_fifty_concurrent_requests_from_a_key_that_affords_ten(database, tmp_path, tiny_models, request):
    settings = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    server = Server(tmp_path / "server", tiny_models, settings).start()
    try:
        api_key = server.create_key("3", rpm_limit=100, concurrency_limit=50)  # 10 x $0.30
        body = {**SMALL, "generate_audio": False}
        with ThreadPoolExecutor(50) as pool:
            responses = list(pool.map(lambda _: generate(server.base, api_key, body, timeout=600), range(50)))
        statuses = Counter(response.status_code for response in responses)
        assert statuses[200] == 10, statuses
        assert statuses[406] + statuses[429] == 40, statuses
        for response in responses:
            if response.status_code == 406:
                assert_error(response, 406, "insufficient_credits")
            elif response.status_code == 200:
                assert response.headers["content-type"] == "video/mp4" and len(response.content) > 1000
        assert credits(server.base, api_key) == 0

        db = server.database()
        with db.read() as session:
            entries = session.execute(select(LedgerEntry.kind, LedgerEntry.amount).order_by(LedgerEntry.id)).all()
        db.dispose()
        running = 0
        for kind, amount in entries:
            running += SIGNS[kind] * amount
            assert running >= 0, "the balance went below zero"
        kinds = Counter(kind for kind, _ in entries)
        assert kinds == {"grant": 1, "reserve": 10, "capture": 10}
    finally:
        server.stop()
