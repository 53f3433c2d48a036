from __future__ import annotations

import pytest

from tests.servers import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    """The embedded default: SQLite, local results, the tiny model, one in-process worker."""
    running = Server(tmp_path_factory.mktemp("server"), tiny_models, {"admin_key": ADMIN_KEY}).start()
    yield running
    running.stop()


ADMIN_KEY = "test-admin-key-0123456789"
