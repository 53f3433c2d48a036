"""POST /v1/ltx-2-fast against a real server: the MP4, the headers, the charge, and each client error."""

from __future__ import annotations

import base64
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from PIL import Image

from tests.conftest import probe

from .client import SMALL, assert_error, credits, generate
from .imagehost import ImageHost


def test_a_hosted_api_client_gets_a_playable_mp4_and_is_charged_once(server, tmp_path):
    api_key = server.create_key("10")
    response = generate(server.base, api_key, SMALL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(response.content)
    info = probe(clip)
    assert (info.video_codec, info.width, info.height, info.frames) == ("h264", 1920, 1080, 150)
    assert info.audio_codec == "aac" and abs(info.audio_seconds - 6) < 0.1

    headers = response.headers
    assert headers["x-cost"] == "0.3"
    assert headers["x-remaining-credits"] == "9.7"
    assert float(headers["x-generation-time"]) > 0
    assert 0 <= int(headers["x-seed-value"]) < 2**32
    assert int(headers["x-rate-limit-remaining"]) == 59
    reset = datetime.fromisoformat(headers["x-rate-limit-reset-at-utc"].replace("Z", "+00:00"))
    assert 0 < (reset - datetime.now(UTC)).total_seconds() <= 61
    assert credits(server.base, api_key) == 9.7
    assert server.ledger_kinds(headers["x-request-id"]) == ["reserve", "capture"]


def test_the_seed_header_reproduces_the_clip(server):
    api_key = server.create_key("10")
    first = generate(server.base, api_key, {**SMALL, "generate_audio": False, "seed": 1234})
    again = generate(server.base, api_key, {**SMALL, "generate_audio": False, "seed": 1234})
    assert first.status_code == again.status_code == 200
    assert first.headers["x-seed-value"] == "1234"
    assert first.content == again.content


def test_image_to_video_from_a_data_uri(server, tmp_path):
    api_key = server.create_key("10")
    buffer = io.BytesIO()
    Image.new("RGB", (320, 180), (200, 30, 30)).save(buffer, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    response = generate(server.base, api_key, {**SMALL, "image": data_uri})
    assert response.status_code == 200, response.text
    (tmp_path / "i2v.mp4").write_bytes(response.content)
    assert probe(tmp_path / "i2v.mp4").frames == 150


def test_invalid_parameters_are_400_with_every_field_and_no_charge(server):
    api_key = server.create_key("10")
    bad = {"prompt": "", "duration": 7, "resolution": "8k", "generate_audio": "yes", "colour": "red"}
    body = assert_error(generate(server.base, api_key, bad), 400, "invalid_request")
    fields = sorted(detail["field"] for detail in body["details"])
    assert fields == ["colour", "duration", "generate_audio", "prompt", "resolution"]
    assert all(detail["message"] for detail in body["details"])

    missing = assert_error(generate(server.base, api_key, {"duration": 6}), 400, "invalid_request")
    assert missing["details"] == [{"field": "prompt", "message": "is required"}]

    not_json = requests.post(
        f"{server.base}/v1/ltx-2-fast", data=b"{nope", timeout=30,
        headers={"x-api-key": api_key, "content-type": "application/json"},
    )
    assert assert_error(not_json, 400, "invalid_request")["details"][0]["field"] == "body"

    private = assert_error(
        generate(server.base, api_key, {**SMALL, "image": "http://10.0.0.1/a.png"}), 400, "invalid_image"
    )
    assert private["details"][0]["field"] == "image"
    assert credits(server.base, api_key) == 10


def test_missing_unknown_and_revoked_keys_are_401(server):
    assert "x-api-key" in assert_error(generate(server.base, None, SMALL), 401, "unauthorized")["error"]
    assert_error(generate(server.base, "ltx_not-a-real-key", SMALL), 401, "unauthorized")
    api_key = server.create_key("10")
    server.cli("keys", "revoke", api_key[:10])
    body = assert_error(generate(server.base, api_key, SMALL), 401, "unauthorized")
    assert "revoked" in body["error"]
    assert_error(requests.get(f"{server.base}/v1/get-user-credits", timeout=30), 401, "unauthorized")


def test_a_key_without_the_4k_scope_gets_403_and_with_it_gets_4k(server):
    api_key = server.create_key("10")
    body = assert_error(generate(server.base, api_key, {**SMALL, "resolution": "4k"}), 403, "forbidden")
    assert "4k" in body["error"]
    assert credits(server.base, api_key) == 10


def test_unknown_models_and_paths_are_404(server):
    api_key = server.create_key("10")
    response = requests.post(f"{server.base}/v1/ltx-2-pro", json=SMALL, headers={"x-api-key": api_key}, timeout=30)
    assert "ltx-2-fast" in assert_error(response, 404, "model_not_found")["error"]
    assert_error(requests.get(f"{server.base}/v1/nothing/here", timeout=30), 404, "not_found")
    assert_error(requests.get(f"{server.base}/v1/ltx-2-fast", timeout=30), 405, "method_not_allowed")


def test_insufficient_credits_is_406_with_the_balance_and_the_price(server):
    api_key = server.create_key("0.2")
    body = assert_error(generate(server.base, api_key, SMALL), 406, "insufficient_credits")
    assert "$0.3" in body["error"] and "$0.2" in body["error"]
    assert credits(server.base, api_key) == 0.2


def test_requests_a_minute_over_the_key_limit_are_429_with_retry_after(server):
    api_key = server.create_key("10", rpm_limit=2)
    for remaining in ("1", "0"):
        response = generate(server.base, api_key, {"prompt": ""})
        assert response.status_code == 400 and response.headers["x-rate-limit-remaining"] == remaining
    limited = generate(server.base, api_key, SMALL)
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["x-rate-limit-remaining"] == "0"


def test_generations_at_once_over_the_key_limit_are_429(server):
    api_key = server.create_key("10", concurrency_limit=1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(generate, server.base, api_key, {**SMALL, "duration": 10})
        while not server.job_statuses() & {"QUEUED", "PROCESSING"}:
            time.sleep(0.02)
        second = generate(server.base, api_key, SMALL)
        assert first.result().status_code == 200
    body = assert_error(second, 429, "rate_limited")
    assert "at once" in body["error"] or "queued or running" in body["error"]
    assert int(second.headers["Retry-After"]) >= 1
    assert credits(server.base, api_key) == 9.5


def test_pricing_and_credits_answer_as_the_hosted_api(server):
    pricing = requests.get(f"{server.base}/v1/pricing", timeout=30).json()
    assert pricing["per_second"]["ltx-2-fast"] == {"1080p": 0.05, "2k": 0.1, "4k": 0.2}
    clips = {(row["resolution"], row["duration"]): row["price"] for row in pricing["clips"]["ltx-2-fast"]}
    assert clips[("1080p", 6)] == 0.3 and clips[("2k", 8)] == 0.8 and clips[("4k", 10)] == 2.0
    assert pricing["rendering"]["2k"] == "2560x1440, refined at full size"
    assert pricing["rendering"]["4k"].startswith("3840x2160, refined at 1920x1088 and upsampled x2 in latent space")
    api_key = server.create_key("12.5")
    response = requests.get(f"{server.base}/v1/get-user-credits", headers={"x-api-key": api_key}, timeout=30)
    assert response.json() == {"credits": 12.5, "free-credits": 0.0}


def test_health_readiness_metrics_and_openapi(server):
    assert requests.get(f"{server.base}/healthz", timeout=30).json() == {"status": "ok"}
    ready = requests.get(f"{server.base}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["workers"] == 1
    api_key = server.create_key("10")
    assert generate(server.base, api_key, {**SMALL, "generate_audio": False}).status_code == 200
    metrics = requests.get(f"{server.base}/metrics", timeout=30).text
    assert re.search(r'ltxserve_http_requests_total\{method="POST",route="/v1/\{model\}",status="200"\} [1-9]', metrics)
    assert re.search(r"^ltxserve_generation_seconds_count [1-9]", metrics, re.M)
    assert re.search(r"^ltxserve_queue_depth 0\.0", metrics, re.M)
    charged = float(re.search(r"^ltxserve_credits_charged_dollars_total (\S+)", metrics, re.M).group(1))
    assert charged >= 0.3
    spec = requests.get(f"{server.base}/openapi.json", timeout=30).json()
    operation = spec["paths"]["/v1/{model}"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404", "406", "429", "500", "502", "504"}
    assert "video/mp4" in operation["responses"]["200"]["content"]
    assert "x-seed-value" in operation["responses"]["200"]["headers"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "x-api-key"
    assert "swagger" in requests.get(f"{server.base}/docs", timeout=30).text.lower()


def test_logs_are_json_with_request_ids_and_never_hold_a_key_or_image(server):
    api_key = server.create_key("10")
    marker = base64.b64encode(b"\x89PNG not really an image " * 4).decode()
    response = generate(server.base, api_key, {**SMALL, "image": "data:image/png;base64," + marker})
    assert_error(response, 400, "invalid_image")
    log = server.log()
    assert api_key not in log and marker not in log
    lines = server.process.log_lines()
    access = [line for line in lines if line.get("request_id") == response.headers["x-request-id"]]
    assert access and access[-1]["status"] == 400 and access[-1]["path"] == "/v1/ltx-2-fast"
    assert access[-1]["key_id"].startswith("key_")


def test_a_request_that_cannot_be_accepted_is_refused_before_its_image_is_fetched(server):
    with ImageHost() as host:
        broke = server.create_key("0")
        assert_error(generate(server.base, broke, {**SMALL, "image": host.url}), 406, "insufficient_credits")
        assert host.requests == 0
        funded = server.create_key("10")
        assert generate(server.base, funded, {**SMALL, "generate_audio": False, "image": host.url}).status_code == 200
        assert host.requests == 1


def test_slow_image_hosts_do_not_hold_up_other_requests(server):
    """Downloads run on threads of their own: 60 stalled downloads (more than the 40 threads that answer
    requests) leave a balance query as quick as ever. (The image is unreadable: nothing gets generated.)"""
    api_key = server.create_key("10", rpm_limit=1000, concurrency_limit=100)
    with ImageHost(delay_s=4, readable=False) as host, ThreadPoolExecutor(60) as pool:
        stalled = [pool.submit(generate, server.base, api_key, {**SMALL, "image": host.url}) for _ in range(60)]
        deadline = time.monotonic() + 30
        while host.requests < 16:  # as many downloads as run at once
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.perf_counter()
        assert credits(server.base, api_key) > 0
        assert time.perf_counter() - started < 1.0
        assert {future.result().status_code for future in stalled} == {400}
