"""The event feed across processes: an API-only server and a worker process on one database, as in a scale
out. Streams, sync waits and status polls hear of the worker's changes through the server's one listener
(PostgreSQL's NOTIFY, or SQLite's log polling), with no polling of their own."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.servers import Server

from .client import SMALL, generate, submit, wait_for
from .test_v2_requests import events

QUIET = {**SMALL, "generate_audio": False}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scaled_out(request, tmp_path_factory, tiny_models):
    settings = {"embedded_workers": "0", "worker_poll_s": "0.2"}
    schema = None
    if request.param == "postgresql":
        from tests.servers import PgSchema

        schema = PgSchema()
        settings["database_url"] = schema.url
    server = Server(tmp_path_factory.mktemp(f"feed-{request.param}"), tiny_models, settings)
    server.start(ready=False)
    server.worker()
    server.wait("/readyz")
    yield server
    server.stop()
    if schema is not None:
        schema.drop()


def test_a_stream_hears_every_change_a_worker_process_makes(scaled_out):
    api_key = scaled_out.create_key("10")
    request_id = submit(scaled_out.base, api_key, QUIET).json()["request_id"]
    stream = events(scaled_out, api_key, request_id)
    statuses = [event["data"]["status"] for event in stream if event["event"] == "status"]
    assert statuses == ["QUEUED", "PROCESSING", "COMPLETED"]
    stages = list(dict.fromkeys(e["data"]["progress"]["stage"] for e in stream if e["event"] == "progress"))
    assert stages == ["encode_prompt", "stage1", "upsample", "stage2", "decode_video"]
    ids = [int(event["id"]) for event in stream if event["event"] != "queue"]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all("id" not in event for event in stream if event["event"] == "queue")  # turns are not resumed


def test_polls_and_sync_waits_see_the_end_promptly(scaled_out):
    api_key = scaled_out.create_key("10", concurrency_limit=5)
    request_id = submit(scaled_out.base, api_key, QUIET).json()["request_id"]
    body = wait_for(scaled_out.base, api_key, request_id, "PROCESSING")
    assert body["metrics"]["remaining_credits"] == 9.7  # read while cached: the reservation shows
    ended = wait_for(scaled_out.base, api_key, request_id, "COMPLETED")
    assert ended["metrics"]["cost"] == 0.3
    # A sync request answers within moments of the worker finishing (no waiter polls the database).
    started = time.monotonic()
    response = generate(scaled_out.base, api_key, QUIET)
    assert response.status_code == 200
    waited = time.monotonic() - started - float(response.headers["x-generation-time"])
    assert waited < 2.0, waited


def test_streams_on_a_queued_request_all_end_when_it_is_canceled(scaled_out):
    """Streams on a queued request wait on the feed, not on the database: the cancel reaches each of them
    (and one that connects after it replays the log to the same end)."""
    api_key = scaled_out.create_key("100", concurrency_limit=20)
    blocker = submit(scaled_out.base, api_key, {**QUIET, "duration": 10}).json()["request_id"]
    queued = submit(scaled_out.base, api_key, QUIET).json()["request_id"]
    wait_for(scaled_out.base, api_key, blocker, "PROCESSING")
    ended = []

    def follow() -> None:
        ended.append(events(scaled_out, api_key, queued)[-1]["data"]["status"])

    followers = [threading.Thread(target=follow) for _ in range(60)]
    for follower in followers:
        follower.start()
    requests.post(f"{scaled_out.base}/v2/requests/{queued}/cancel", headers={"x-api-key": api_key}, timeout=30)
    for follower in followers:
        follower.join(30)
    assert ended == ["CANCELED"] * 60
    requests.post(f"{scaled_out.base}/v2/requests/{blocker}/cancel", headers={"x-api-key": api_key}, timeout=30)
