"""The async API over real HTTP, as a hosted-API client uses it: submit, follow, cancel, fetch, webhooks."""

from __future__ import annotations

import itertools
import json
import shutil
import time

import pytest
import requests
from sqlalchemy import select

from ltxserve.db import WebhookAttempt
from ltxserve.webhooks import HEADER, InvalidSignature, verify
from tests.conftest import probe
from tests.servers import Server

from .client import SMALL, assert_error, credits, status, submit, wait_for, wait_for_progress
from .receiver import Receiver

LONG = {**SMALL, "duration": 10}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    running = Server(tmp_path_factory.mktemp("v2"), tiny_models, {"webhook_backoff_s": "0.3"}).start()
    yield running
    running.stop()


def events(server: Server, api_key: str, request_id: str, last_event_id: str | None = None) -> list[dict]:
    """Read the request's Server-Sent Events until the stream ends; each as {id, event, data}."""
    headers = {"x-api-key": api_key, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    response = requests.get(f"{server.base}/v2/requests/{request_id}/events", headers=headers, stream=True,
                            timeout=120)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    received, current = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "data" in current:
                received.append({**current, "data": json.loads(current["data"])})
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value.strip()
    return received


def test_submit_stream_progress_complete_and_download_a_playable_clip(server, tmp_path):
    api_key = server.create_key("10")
    answer = submit(server.base, api_key, SMALL)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    request_id = accepted["request_id"]
    assert accepted["status"] == "QUEUED"
    assert accepted["status_url"] == accepted["poll_url"] == f"{server.base}/v2/requests/{request_id}/status"
    assert accepted["response_url"] == f"{server.base}/v2/requests/{request_id}"

    stream = events(server, api_key, request_id)
    statuses = [event["data"]["status"] for event in stream if event["event"] == "status"]
    assert statuses == ["QUEUED", "PROCESSING", "COMPLETED"]
    progress = [event["data"]["progress"] for event in stream if event["event"] == "progress"]
    stages = list(dict.fromkeys(p["stage"] for p in progress))
    assert stages == ["encode_prompt", "stage1", "upsample", "stage2", "decode_audio", "decode_video"]
    percents = [p["percent"] for p in progress]
    assert percents == sorted(percents) and 0 <= percents[0] < 5 and percents[-1] == 100
    logged = [event for event in stream if event["event"] != "queue"]  # a turn in the queue has no id
    ids = [int(event["id"]) for event in logged]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    # Resuming after an event replays exactly what came after it.
    assert events(server, api_key, request_id, last_event_id=logged[2]["id"]) == logged[3:]

    record = requests.get(accepted["response_url"], headers={"x-api-key": api_key}, timeout=30)
    assert record.status_code == 200
    body = record.json()
    assert body["status"] == "COMPLETED" and body["error"] is None
    assert body["metrics"]["cost"] == 0.3 and body["metrics"]["remaining_credits"] == 9.7
    assert body["metrics"]["inference_time"] > 0 and set(body["metrics"]["timings"]) >= {"stage1", "stage2"}
    assert body["input"]["duration"] == 6 and body["input"]["seed"] == body["seed"]

    # The output link is absolute and signed: a player needs no header, and can seek.
    clip = requests.get(body["output"], timeout=60)
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    (tmp_path / "clip.mp4").write_bytes(clip.content)
    info = probe(tmp_path / "clip.mp4")
    assert (info.video_codec, info.width, info.height, info.frames, info.audio_codec) == (
        "h264", 1920, 1080, 150, "aac")
    part = requests.get(body["output"], headers={"Range": "bytes=100-299"}, timeout=30)
    assert part.status_code == 206 and part.content == clip.content[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(clip.content)}"
    by_key = requests.get(f"{accepted['response_url']}/output", headers={"x-api-key": api_key}, timeout=30)
    assert by_key.content == clip.content
    forged = requests.get(body["output"].replace("signature=", "signature=0"), timeout=30)
    assert_error(forged, 403, "forbidden")

    assert credits(server.base, api_key) == 9.7
    assert server.ledger_kinds(request_id) == ["reserve", "capture"]


def test_status_shows_queue_position_and_progress_and_cancel_while_queued_is_not_billed(server):
    api_key = server.create_key("10")
    running = submit(server.base, api_key, LONG).json()["request_id"]
    queued = submit(server.base, api_key, SMALL).json()["request_id"]
    wait_for(server.base, api_key, running, "PROCESSING")
    waiting = status(server.base, api_key, queued).json()
    assert waiting["status"] == "QUEUED" and waiting["queue_position"] == 1 and waiting["progress"] is None

    canceled = requests.post(f"{server.base}/v2/requests/{queued}/cancel", headers={"x-api-key": api_key}, timeout=30)
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED"
    assert "not charged" in canceled.json()["error"]
    assert server.ledger_kinds(queued) == ["reserve", "release"]

    during = wait_for(server.base, api_key, running, "PROCESSING")
    assert during["queue_position"] is None
    with_progress = wait_for_progress(server.base, api_key, running)
    assert with_progress["progress"]["total"] >= 1 and 0 <= with_progress["progress"]["percent"] <= 100
    finished = wait_for(server.base, api_key, running, "COMPLETED")
    assert finished["metrics"]["cost"] == 0.5
    assert credits(server.base, api_key) == 9.5  # only the clip that ran is billed
    assert events(server, api_key, queued)[-1]["data"]["status"] == "CANCELED"


def test_cancel_while_running_stops_the_worker_and_is_not_billed(server):
    api_key = server.create_key("10")
    request_id = submit(server.base, api_key, LONG).json()["request_id"]
    wait_for_progress(server.base, api_key, request_id, past=("encode_prompt",))
    started = time.monotonic()
    canceled = requests.post(f"{server.base}/v2/requests/{request_id}/cancel", headers={"x-api-key": api_key},
                             timeout=30)
    assert canceled.json()["status"] == "CANCELED"
    assert server.ledger_kinds(request_id) == ["reserve", "release"]
    # The worker drops the job at its next step and is free: the next request runs at once.
    after = submit(server.base, api_key, {**SMALL, "generate_audio": False}).json()["request_id"]
    wait_for(server.base, api_key, after, "COMPLETED", timeout_s=60)
    assert time.monotonic() - started < 40
    assert not (server.root / "results" / f"{request_id}.mp4").exists()
    again = requests.post(f"{server.base}/v2/requests/{after}/cancel", headers={"x-api-key": api_key}, timeout=30)
    assert "already COMPLETED" in assert_error(again, 409, "not_cancelable")["error"]
    assert credits(server.base, api_key) == 9.7


def test_the_same_idempotency_key_is_one_request_and_one_charge(server):
    api_key = server.create_key("10")
    headers = {"Idempotency-Key": "order-1234"}
    first = submit(server.base, api_key, SMALL, **headers)
    # The same body with its defaults spelled out is the same request.
    again = submit(server.base, api_key, {**SMALL, "aspect_ratio": "16:9"}, **headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["request_id"] == first.json()["request_id"]
    other = submit(server.base, api_key, {**SMALL, "prompt": "something else"}, **headers)
    assert "order-1234" in assert_error(other, 409, "idempotency_conflict")["error"]
    wait_for(server.base, api_key, first.json()["request_id"], "COMPLETED")
    late = submit(server.base, api_key, SMALL, **headers)
    assert late.json() == {**first.json(), "status": "COMPLETED"}
    assert credits(server.base, api_key) == 9.7
    assert server.ledger_kinds(first.json()["request_id"]) == ["reserve", "capture"]
    # Another key's idempotency keys are its own.
    other_key = server.create_key("10")
    assert submit(server.base, other_key, SMALL, **headers).json()["request_id"] != first.json()["request_id"]


def test_a_key_sees_only_its_own_requests(server):
    owner, stranger = server.create_key("10"), server.create_key("10")
    request_id = submit(server.base, owner, {**SMALL, "generate_audio": False}).json()["request_id"]
    for path in ("/status", "", "/output", "/events"):
        answer = requests.get(f"{server.base}/v2/requests/{request_id}{path}", headers={"x-api-key": stranger},
                              timeout=30)
        assert_error(answer, 404, "request_not_found")
    canceled = requests.post(f"{server.base}/v2/requests/{request_id}/cancel", headers={"x-api-key": stranger},
                             timeout=30)
    assert_error(canceled, 404, "request_not_found")
    assert_error(requests.get(f"{server.base}/v2/requests/{request_id}", timeout=30), 401, "unauthorized")
    assert wait_for(server.base, owner, request_id, "COMPLETED")["status"] == "COMPLETED"


def test_a_keys_requests_are_listed_newest_first_a_page_at_a_time(server):
    owner, stranger = server.create_key("10", concurrency_limit=3), server.create_key("10")
    ids = [submit(server.base, owner, {**SMALL, "seed": n}).json()["request_id"] for n in range(3)]
    for request_id in ids:
        requests.post(f"{server.base}/v2/requests/{request_id}/cancel", headers={"x-api-key": owner}, timeout=30)

    def page(api_key: str, **params) -> requests.Response:
        return requests.get(f"{server.base}/v2/requests", params=params, headers={"x-api-key": api_key}, timeout=30)

    first = page(owner, limit=2).json()
    assert [r["request_id"] for r in first["requests"]] == ids[:0:-1] and first["next_cursor"]
    assert first["requests"][0]["input"]["seed"] == 2 and first["requests"][0]["status"] == "CANCELED"
    last = page(owner, limit=2, cursor=first["next_cursor"]).json()
    assert [r["request_id"] for r in last["requests"]] == ids[:1] and last["next_cursor"] is None
    assert page(stranger).json() == {"requests": [], "next_cursor": None}
    # A cursor is a request of one's own: anything else is as unknown as another key's request.
    for cursor in ("nonsense", first["requests"][1]["request_id"]):
        assert_error(page(owner if cursor == "nonsense" else stranger, cursor=cursor), 404, "request_not_found")
    assert_error(page(owner, limit=0), 400, "invalid_request")
    assert_error(page(owner, cursor="a\x00b"), 400, "invalid_request")


def test_output_before_completion_is_409_and_bad_bodies_are_400(server):
    api_key = server.create_key("10")
    request_id = submit(server.base, api_key, LONG).json()["request_id"]
    early = requests.get(f"{server.base}/v2/requests/{request_id}/output", headers={"x-api-key": api_key},
                         timeout=30)
    assert_error(early, 409, "not_ready")
    requests.post(f"{server.base}/v2/requests/{request_id}/cancel", headers={"x-api-key": api_key}, timeout=30)
    bad = submit(server.base, api_key, {**SMALL, "duration": 7, "webhook_url": "ftp://example.com/x"})
    fields = {detail["field"] for detail in assert_error(bad, 400, "invalid_request")["details"]}
    assert fields == {"duration", "webhook_url"}
    private = submit(server.base, api_key, {**SMALL, "webhook_url": "http://10.1.2.3/hook"})
    assert "not a public address" in assert_error(private, 400, "invalid_request")["error"]
    assert credits(server.base, api_key) == 10


def test_webhook_is_signed_and_retried_until_it_is_taken(server):
    api_key = server.create_key("10")
    secret = requests.get(f"{server.base}/v2/webhook-secret", headers={"x-api-key": api_key}, timeout=30).json()
    assert secret["header"] == HEADER and secret["secret"].startswith("whsec_")
    with Receiver(answers=[500, 503]) as receiver:
        accepted = submit(server.base, api_key, {**SMALL, "generate_audio": False, "webhook_url": receiver.url})
        request_id = accepted.json()["request_id"]
        deliveries = receiver.wait(3)
    time.sleep(1)
    assert len(receiver.deliveries) == 3, "a delivery that was taken is not sent again"
    for delivery in deliveries:
        verify(secret["secret"], delivery.body, delivery.headers[HEADER])
        with pytest.raises(InvalidSignature):
            verify(secret["secret"], delivery.body + b" ", delivery.headers[HEADER])
    event = json.loads(deliveries[-1].body)
    assert event["event"] == "request.completed" and event["request_id"] == request_id
    assert event["status"] == "COMPLETED" and event["output"].startswith(f"{server.base}/v2/requests/{request_id}/")
    assert requests.get(event["output"], timeout=30).status_code == 200
    assert [d.headers["ltxserve-delivery"] for d in deliveries] == [f"{request_id}/{n}" for n in (1, 2, 3)]

    db = server.database()
    with db.read() as session:
        attempts = session.execute(
            select(WebhookAttempt.attempt, WebhookAttempt.status_code, WebhookAttempt.at)
            .where(WebhookAttempt.job_id == request_id)
            .order_by(WebhookAttempt.id)
        ).all()
    db.dispose()
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    gaps = [(later.at - earlier.at).total_seconds() for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, f"backoff doubles: {gaps}"


def test_a_failed_request_is_422_with_its_error_and_not_billed(tmp_path, tiny_models):
    server = Server(tmp_path / "broken", tiny_models).start()
    try:
        api_key = server.create_key("10")
        results = server.root / "results"
        shutil.rmtree(results, ignore_errors=True)
        results.write_text("a file where the results folder should be")
        request_id = submit(server.base, api_key, SMALL).json()["request_id"]
        failed = wait_for(server.base, api_key, request_id, "FAILED")
        answer = status(server.base, api_key, request_id)
        assert answer.status_code == 422 and "not charged" in failed["error"]
        assert failed["code"] == "generation_failed" and failed["metrics"]["cost"] == 0
        record = requests.get(f"{server.base}/v2/requests/{request_id}", headers={"x-api-key": api_key}, timeout=30)
        assert record.status_code == 422 and record.json()["output"] is None
        assert credits(server.base, api_key) == 10
    finally:
        server.stop()


def test_results_expire_and_are_deleted_and_then_the_records_too(tmp_path, tiny_models):
    server = Server(tmp_path / "expiring", tiny_models, {"result_ttl_s": "3", "record_ttl_s": "8"}).start()
    try:
        api_key = server.create_key("10")
        request_id = submit(server.base, api_key, {**SMALL, "generate_audio": False}).json()["request_id"]
        wait_for(server.base, api_key, request_id, "COMPLETED")
        record = requests.get(f"{server.base}/v2/requests/{request_id}", headers={"x-api-key": api_key}, timeout=30)
        link = record.json()["output"]
        assert requests.get(link, timeout=30).status_code == 200
        stored = server.root / "results" / f"{request_id}.mp4"
        assert stored.exists()
        deadline = time.monotonic() + 30
        while stored.exists():
            assert time.monotonic() < deadline, "the result was not deleted after its retention time"
            time.sleep(0.2)
        time.sleep(0.5)
        later = requests.get(f"{server.base}/v2/requests/{request_id}", headers={"x-api-key": api_key}, timeout=30)
        assert later.json()["output"] is None and later.json()["output_expired_at"] is not None
        gone = requests.get(f"{server.base}/v2/requests/{request_id}/output", headers={"x-api-key": api_key},
                            timeout=30)
        assert "seed" in assert_error(gone, 410, "expired")["error"]
        assert_error(requests.get(link, timeout=30), 403, "forbidden")  # the link expired with the clip
        assert credits(server.base, api_key) == 9.7  # deleting a delivered clip refunds nothing

        # After LTXSERVE_RECORD_TTL_S the record goes as well; the money it moved stays on the ledger.
        while (swept := requests.get(f"{server.base}/v2/requests/{request_id}", headers={"x-api-key": api_key},
                                     timeout=30)).status_code == 200:
            assert time.monotonic() < deadline + 30, "the record was not swept after its retention time"
            time.sleep(0.2)
        assert_error(swept, 404, "request_not_found")
        assert credits(server.base, api_key) == 9.7
        assert server.ledger_kinds(request_id) == ["reserve", "capture"]
    finally:
        server.stop()


def test_openapi_documents_the_async_api(server):
    spec = requests.get(f"{server.base}/openapi.json", timeout=30).json()
    submit_op = spec["paths"]["/v2/{model}"]["post"]
    assert set(submit_op["responses"]) >= {"202", "400", "401", "403", "404", "406", "409", "429", "502"}
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in submit_op["parameters"])
    assert "webhook_url" in spec["components"]["schemas"]["AsyncGenerationRequest"]["properties"]
    for path in ("/v2/requests/{request_id}/status", "/v2/requests/{request_id}"):
        assert {"200", "422", "401", "404"} <= set(spec["paths"][path]["get"]["responses"])
    stream = spec["paths"]["/v2/requests/{request_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    output = spec["paths"]["/v2/requests/{request_id}/output"]["get"]["responses"]
    assert {"200", "307", "403", "409", "410"} <= set(output) and "video/mp4" in output["200"]["content"]
