"""The client's plans (`ltxserve.client.core`) carried out by a scripted shell: no server, no sockets, no
sleeping. Each test answers the calls and reads a plan asks for, and checks what it asks next."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ltxserve.client import ApiError, core
from ltxserve.client.protocol import EventParser

BROKEN = httpx.ReadError("connection reset by peer")


@dataclass
class Settings:
    retries: int = 2
    backoff_s: float = 1.0
    sync_timeout: float = 900.0


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    return httpx.Response(status, headers=headers, content=content, request=httpx.Request("GET", "http://server/"))


def sse(*events: tuple[int | None, str, dict]) -> bytes:
    """Events as the server writes them; a `queue` event has no id."""
    return "".join((f"id: {id_}\n" if id_ is not None else "") + f"event: {kind}\ndata: {json.dumps(data)}\n\n"
                   for id_, kind, data in events).encode()


def carry_out(plan: core.Plan[Any, Any], answers: list[Any]) -> tuple[list[Any], list[Any]]:
    """Runs `plan` as a shell would, answering each Call and Read with the next of `answers` (an exception
    is thrown in instead); sleeps are noted, not slept. What it asked for, and what it emitted."""
    asked: list[Any] = []
    emitted: list[Any] = []
    given = iter(answers)
    steps = core.Steps(plan)
    for action in steps:
        asked.append(action)
        if isinstance(action, core.Emit):
            emitted.append(action.value)
        elif isinstance(action, core.Read | core.Call):
            outcome = next(given)
            if isinstance(outcome, httpx.TransportError):
                steps.fail(outcome)
            else:
                steps.give(outcome)
    assert next(given, None) is None, "the plan ended before asking for every answer"
    return asked, emitted


def outcome(plan: core.Plan[Any, Any], answers: list[Any]) -> tuple[list[Any], Any]:
    asked, (value,) = carry_out(core.result(plan), answers)
    return asked[:-1], value


def test_a_503_is_waited_out_then_the_same_call_is_made_again():
    asked, response = outcome(core.send(Settings(), "GET", "/v1/get-user-credits"),
                              [answer(503, {"error": "busy"}), answer(200, {"credits": 2})])
    first, pause, again = asked
    assert first == again == core.Call("GET", "/v1/get-user-credits")
    assert isinstance(pause, core.Sleep) and 0.75 <= pause.seconds <= 1.25
    assert response.json() == {"credits": 2}


def test_a_429_waits_for_its_retry_after_and_backoff_doubles():
    asked, _ = outcome(core.send(Settings(retries=3), "GET", "/v2/requests"),
                       [BROKEN, answer(502), answer(429, {"code": "rate_limited"}, **{"retry-after": "7"}),
                        answer(200)])
    first, second, third = (action.seconds for action in asked if isinstance(action, core.Sleep))
    assert 0.75 <= first <= 1.25 and 1.5 <= second <= 2.5 and third == 7.0


def test_retries_run_out_and_an_answer_that_is_not_retried_raises_at_once():
    with pytest.raises(httpx.ReadError):
        carry_out(core.result(core.send(Settings(retries=2), "GET", "/x")), [BROKEN, BROKEN, BROKEN])
    with pytest.raises(ApiError) as refused:
        carry_out(core.result(core.send(Settings(), "GET", "/x")),
                  [answer(400, {"error": "duration: 7 is not one of 6, 8, 10", "code": "invalid_request",
                                "request_id": "r1", "details": [{"field": "duration"}]})])
    assert (refused.value.status, refused.value.code, refused.value.request_id) == (400, "invalid_request", "r1")
    assert refused.value.details == [{"field": "duration"}]
    asked, status = outcome(core.status(Settings(), "r1"), [answer(422, {"request_id": "r1", "status": "FAILED",
                                                                        "error": "out of memory"})])
    assert len(asked) == 1 and status.status == "FAILED" and status.error == "out of memory"


def test_a_retried_submit_names_the_same_request_each_time():
    asked, request_id = outcome(core.submit(Settings(), {"prompt": "waves"}, None, "https://hook.example/"),
                                [answer(502), answer(202, {"request_id": "r1"})])
    first, _, again = asked
    assert request_id == "r1" and first == again
    assert first.options["json"] == {"prompt": "waves", "webhook_url": "https://hook.example/"}
    assert first.options["headers"]["Idempotency-Key"].startswith("ltxserve-client-")


def test_the_event_parser_takes_lines_and_characters_split_between_chunks():
    stream = (b": keep-alive\r\n\r\n" + sse((1, "progress", {"status": "PROCESSING", "progress": {
        "stage": "d\u00e9code", "step": 1, "total": 4, "percent": 12.5}})).replace(b"\n", b"\r\n")
        + sse((None, "queue", {"status": "QUEUED", "queue_position": 3})))
    for size in (1, 2, 3, 7, len(stream)):
        parser = EventParser()
        events = [event for at in range(0, len(stream), size) for event in parser.feed(stream[at:at + size])]
        assert [(event.id, event.kind, event.status) for event in events] == [(1, "progress", "PROCESSING"),
                                                                              (None, "queue", "QUEUED")]
        assert events[0].progress.stage == "d\u00e9code" and events[1].queue_position == 3


def test_a_cut_event_stream_is_resumed_after_the_last_event_heard():
    running, done = {"status": "PROCESSING"}, {"status": "COMPLETED"}
    first = sse((1, "status", running), (2, "progress", running))
    asked, events = carry_out(core.events(Settings(), "r1", 30.0), [
        answer(200), first[:-5], BROKEN,  # cut mid-way through the second event
        answer(200), sse((2, "progress", running), (3, "status", done)), ])
    calls = [action for action in asked if isinstance(action, core.Call)]
    assert [call.options["headers"] for call in calls] == [{}, {"Last-Event-ID": "1"}]
    assert calls[0].stream and calls[0].options["timeout"].read == 30.0
    assert [event.id for event in events] == [1, 2, 3] and events[-1].finished
    assert any(isinstance(action, core.Sleep) for action in asked)


def test_a_stream_that_ends_with_nothing_new_asks_the_status_before_it_stops():
    asked, events = carry_out(core.events(Settings(), "r1", 60.0), [
        answer(200), b": keep-alive\n\n", None, answer(200, {"request_id": "r1", "status": "CANCELED"})])
    assert events == [] and asked[-1] == core.Call("GET", "/v2/requests/r1/status", {})


def test_an_event_stream_refused_raises_the_servers_error_read_whole():
    refusal = answer(404, {"error": "no such request", "code": "not_found"})
    with pytest.raises(ApiError) as missing:
        carry_out(core.events(Settings(), "r1", 60.0), [refusal, None])
    assert missing.value.code == "not_found"


def test_wait_reports_each_change_and_gives_up_past_its_timeout():
    seen: list[str] = []
    stream = sse((1, "status", {"status": "PROCESSING"}), (2, "status", {"status": "COMPLETED"}))
    record = {"request_id": "r1", "status": "COMPLETED", "output": "https://bucket/r1.mp4", "seed": 42}
    asked, done = outcome(core.wait(Settings(), "r1", lambda update: seen.append(update.status), 300),
                          [answer(200, {"request_id": "r1", "status": "QUEUED"}), answer(200), BROKEN,
                           answer(200), stream, answer(200, record)])
    assert seen == ["QUEUED", "PROCESSING", "COMPLETED"] and done.seed == 42
    assert any(isinstance(action, core.Sleep) for action in asked)  # the broken stream, retried inside wait
    with pytest.raises(TimeoutError, match="still PROCESSING"):
        carry_out(core.result(core.wait(Settings(), "r1", None, 0)),
                  [answer(200, {"request_id": "r1", "status": "QUEUED"}), answer(200), stream])
    with pytest.raises(ApiError) as failed:
        carry_out(core.result(core.wait(Settings(), "r1", None, None)), [answer(422, {
            "request_id": "r1", "status": "FAILED", "error": "out of memory", "code": "generation_failed"})] * 2)
    assert (failed.value.code, failed.value.message) == ("generation_failed", "out of memory")


def test_a_download_cut_off_is_resumed_with_a_range_and_a_range_ignored_starts_over(tmp_path):
    record = answer(200, {"request_id": "r1", "status": "COMPLETED", "output": "https://bucket/r1.mp4"})
    asked, path = outcome(core.download(Settings(), "r1", tmp_path / "clip.mp4"), [
        record, answer(200, b"", **{"content-length": "10"}), b"01234", BROKEN,
        answer(206, b"", **{"content-range": "bytes 5-9/10"}), b"567", BROKEN,
        answer(200, b"", **{"content-length": "10"}), b"0123", b"456789", None])
    calls = [action for action in asked if isinstance(action, core.Call)][1:]
    assert all(call.link and call.stream and call.url == "https://bucket/r1.mp4" for call in calls)
    assert [call.options["headers"] for call in calls] == [{}, {"Range": "bytes=5-"}, {"Range": "bytes=8-"}]
    assert path.read_bytes() == b"0123456789" and not (tmp_path / "clip.mp4.part").exists()


def test_a_download_refused_or_not_ready_raises(tmp_path):
    with pytest.raises(ApiError) as early:
        carry_out(core.download(Settings(), "r1", tmp_path / "clip.mp4"),
                  [answer(200, {"request_id": "r1", "status": "QUEUED"})])
    assert early.value.code == "not_ready" and not list(tmp_path.iterdir())
    record = answer(200, {"request_id": "r1", "status": "COMPLETED", "output": "https://bucket/r1.mp4"})
    with pytest.raises(ApiError) as refused:
        carry_out(core.download(Settings(), "r1", tmp_path / "clip.mp4"),
                  [record, answer(403, {"error": "the link expired", "code": "forbidden"}), None])
    assert (refused.value.status, refused.value.message) == (403, "the link expired")


def test_requests_are_fetched_a_page_at_a_time_up_to_the_limit():
    page = [{"request_id": f"r{n}", "status": "COMPLETED"} for n in range(3)]
    asked, records = carry_out(core.requests(Settings(), 4), [
        answer(200, {"requests": page, "next_cursor": "c1"}), answer(200, {"requests": page, "next_cursor": "c2"})])
    calls = [action for action in asked if isinstance(action, core.Call)]
    assert [call.options["params"] for call in calls] == [{"limit": 4}, {"limit": 1, "cursor": "c1"}]
    assert [record.request_id for record in records] == ["r0", "r1", "r2", "r0"]
