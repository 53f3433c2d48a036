"""`ltxserve.client` against a real server on loopback, some calls through a proxy that drops connections
and answers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import pytest

from ltxserve.client import ApiError, AsyncClient, Client, Status
from tests.api.client import SMALL, wait_for
from tests.client.proxy import Fault, FaultyProxy
from tests.servers import Server, on_postgresql


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    running = Server(tmp_path_factory.mktemp("client"), tiny_models, {"video_preset": "ultrafast"}).start()
    yield running
    running.stop()


@pytest.fixture
def proxy(server):
    faulty = FaultyProxy(server.port)
    yield faulty
    faulty.close()


@pytest.fixture
def key(server) -> str:
    return server.create_key("10", concurrency_limit=4)


def test_run_returns_the_clip_and_errors_say_what_was_wrong(server, key):
    with Client(server.base, key) as client:
        clip = client.run(**SMALL)
        assert clip[4:8] == b"ftyp" and len(clip) > 10_000
        with pytest.raises(ApiError) as invalid:
            client.run(**{**SMALL, "duration": 7})
    assert invalid.value.status == 400 and invalid.value.code == "invalid_request"
    assert "duration" in invalid.value.message and invalid.value.request_id
    with Client(server.base, "ltx_not-a-key") as stranger, pytest.raises(ApiError) as refused:
        stranger.credits()
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


def test_wait_reports_the_queue_then_each_stage_in_order(server, key):
    seen: list[Status] = []
    with Client(server.base, key) as client:
        request = client.submit(**SMALL)
        record = request.wait(on_progress=seen.append, timeout=300)
    assert record.status == "COMPLETED" and record.cost == 0.3 and record.output
    assert seen[0].status in ("QUEUED", "PROCESSING") and seen[-1].status == "COMPLETED"
    percents = [update.progress.percent for update in seen if update.progress and update.progress.percent is not None]
    assert len(percents) >= 5 and percents == sorted(percents)
    stages = list(dict.fromkeys(update.progress.stage for update in seen if update.progress))
    assert stages[0] == "encode_prompt" and "decode_video" in stages


def _turns_told(watching: Client, canceling: Client, base: str, key: str) -> list[float]:
    """Two requests queued behind a running one; the second's stream, while the first and then the second are
    canceled through `canceling`. Each turn's wait from the cancel that moved it."""
    running = watching.submit(**{**SMALL, "duration": 10, "resolution": "2k"})
    first, second = watching.submit(**SMALL), watching.submit(**SMALL)
    wait_for(base, key, running.id, "PROCESSING")
    turns: list[int] = []
    waits: list[float] = []
    canceled_at = time.monotonic()
    for event in second.events(read_timeout_s=60):
        if event.kind == "queue":
            assert event.id is None and event.status == "QUEUED"
            turns.append(event.queue_position)
            waits.append(time.monotonic() - canceled_at)
            # Each turn is told once: the cancel ahead of it moves it up, its own ends the stream.
            canceling.request((first if len(turns) == 1 else second).id).cancel()
            canceled_at = time.monotonic()
    canceling.request(running.id).cancel()
    assert turns == [2, 1] and event.status == "CANCELED"
    return waits


def test_the_event_stream_tells_a_queued_request_each_new_turn(server, key):
    with Client(server.base, key) as client:
        waits = _turns_told(client, client, server.base, key)
    assert waits[1] < 5  # at once, not at the stream's 60 s recheck or a reconnect


def test_a_turn_moved_through_another_api_server_is_told_at_once_on_postgresql(tmp_path, tiny_models):
    with on_postgresql(tmp_path / "a", tiny_models, {"video_preset": "ultrafast"}) as serving:
        # An API server of its own on the same database: its cancels reach the first by NOTIFY only.
        other = Server(tmp_path / "b", tiny_models, {"database_url": serving.database_url, "embedded_workers": "0"})
        other.start(ready=False)
        try:
            key = serving.create_key("10", concurrency_limit=4)
            with Client(serving.base, key) as watching, Client(other.base, key) as canceling:
                waits = _turns_told(watching, canceling, serving.base, key)
        finally:
            other.stop()
    assert waits[1] < 5


def test_a_dropped_event_stream_resumes_where_it_stopped(server, key, proxy):
    with Client(server.base, key) as direct, Client(proxy.base, key, backoff_s=0.05) as client:
        request = client.submit(**SMALL)
        # The first stream is cut a few events in, mid-event; the client reconnects with Last-Event-ID.
        proxy.faults.append(Fault(f"GET /v2/requests/{request.id}/events", cut_after=900))
        resumed = [event.id for event in request.events() if event.kind != "queue"]
        assert proxy.faults[0].used
        replayed = [event.id for event in direct.request(request.id).events() if event.kind != "queue"]
    assert resumed == replayed and len(resumed) > 5 and resumed == sorted(set(resumed))


def test_a_download_cut_mid_way_resumes_to_identical_bytes(server, key, proxy, tmp_path):
    with Client(server.base, key) as direct, Client(proxy.base, key, backoff_s=0.05) as client:
        request = client.submit(**SMALL)
        request.wait(timeout=300)
        whole = direct.request(request.id).download(tmp_path / "direct.mp4").read_bytes()
        proxy.faults.append(Fault(f"GET /v2/requests/{request.id}/output", cut_after=len(whole) // 2))
        resumed = request.download(tmp_path / "resumed.mp4").read_bytes()
    assert proxy.faults[0].used and resumed == whole
    assert not (tmp_path / "resumed.mp4.part").exists()


def test_a_submit_whose_answer_was_lost_is_retried_and_charged_once(server, key, proxy):
    proxy.faults.append(Fault("POST /v2/ltx-2-fast", bad_gateway=True))
    with Client(proxy.base, key, backoff_s=0.05) as client:
        request = client.submit(**SMALL)
        request.wait(timeout=300)
        assert proxy.faults[0].used
        assert client.credits() == pytest.approx(10 - 0.3)
        assert [record.request_id for record in client.requests()] == [request.id]  # one request, not two
    assert server.ledger_kinds(request.id) == ["reserve", "capture"]


def test_cancel_and_a_failed_wait_raise_with_the_servers_words(server, key):
    with Client(server.base, key) as client:
        request = client.submit(**{**SMALL, "duration": 10, "resolution": "2k"})
        assert request.cancel().status == "CANCELED"
        with pytest.raises(ApiError) as canceled:
            request.wait(timeout=60)
        with pytest.raises(ApiError) as early:
            request.download("never.mp4")
    assert canceled.value.code == "canceled" and canceled.value.request_id == request.id
    assert early.value.code == "not_ready"


def _cli(server: Server, key: str, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTXSERVE_")}
    env.update(LTXSERVE_SERVER=server.base, LTXSERVE_API_KEY=key, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "ltxserve", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_cli_generates_on_the_server_and_finds_the_request_again(server, key, tmp_path):
    done = _cli(server, key, "generate", "waves on a pebble beach", "--duration", "6", "--resolution", "1080p",
                "--seed", "42", "-o", str(tmp_path / "clip.mp4"))
    assert done.returncode == 0, done.stderr
    assert "seed 42, cost $0.30" in " ".join(done.stderr.split())
    request_id = re.search(r"Request (\S+) on", done.stderr).group(1)
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"

    listed = _cli(server, key, "requests", "list", "--json", "--limit", "1")
    assert listed.returncode == 0 and json.loads(listed.stdout)["request_id"] == request_id
    shown = _cli(server, key, "requests", "show", request_id)
    assert shown.returncode == 0 and json.loads(shown.stdout)["seed"] == 42
    again = _cli(server, key, "requests", "download", request_id, "-o", str(tmp_path / "again.mp4"))
    assert again.returncode == 0 and (tmp_path / "again.mp4").read_bytes() == (tmp_path / "clip.mp4").read_bytes()
    refused = _cli(server, key, "requests", "cancel", request_id)
    assert refused.returncode == 1 and "409 not_cancelable" in refused.stderr


def test_the_async_client_submits_follows_and_downloads(server, key, tmp_path):
    async def main() -> tuple[list[str], bytes]:
        async with AsyncClient(server.base, key) as client:
            request = await client.submit(**SMALL)
            seen: list[str] = []
            async with asyncio.timeout(300):
                await request.wait(on_progress=lambda update: seen.append(update.status))
            path = await request.download(tmp_path / "async.mp4")
            return seen, path.read_bytes()

    seen, clip = asyncio.run(main())
    assert seen[-1] == "COMPLETED" and clip[4:8] == b"ftyp"
