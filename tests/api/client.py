"""Calls shaped like the hosted API's own Python snippet, and checks of its answer's shape."""

from __future__ import annotations

import time
import uuid

import requests


def generate(base: str, api_key: str | None, data: dict, **kwargs) -> requests.Response:
    url = f"{base}/v1/ltx-2-fast"
    headers = {"x-api-key": api_key} if api_key is not None else {}
    return requests.post(url, json=data, headers=headers, timeout=kwargs.pop("timeout", 300), **kwargs)


def credits(base: str, api_key: str) -> float:
    response = requests.get(f"{base}/v1/get-user-credits", headers={"x-api-key": api_key}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["credits"]


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    """The hosted API's error shape plus ours: a sentence, a code, the request id (also in the header)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str) and len(body["error"]) > 15
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    uuid.UUID(body["request_id"])
    assert "Traceback" not in body["error"]
    return body


SMALL = {"prompt": "waves on a pebble beach, gulls", "duration": 6, "resolution": "1080p", "generate_audio": True}


def submit(base: str, api_key: str, data: dict, **headers: str) -> requests.Response:
    """The hosted API's v2 call: 202 and where to follow the request."""
    return requests.post(f"{base}/v2/ltx-2-fast", json=data, headers={"x-api-key": api_key, **headers}, timeout=60)


def status(base: str, api_key: str, request_id: str) -> requests.Response:
    return requests.get(f"{base}/v2/requests/{request_id}/status", headers={"x-api-key": api_key}, timeout=30)


def wait_for(base: str, api_key: str, request_id: str, *statuses: str, timeout_s: float = 180) -> dict:
    """Poll as a client would until the request reaches one of `statuses`; its status body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = status(base, api_key, request_id).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {timeout_s} s: {body}"
        time.sleep(0.1)


def wait_for_progress(base: str, api_key: str, request_id: str, *, past: tuple[str, ...] = (),
                      timeout_s: float = 180) -> dict:
    """Poll until the running request reports progress in a stage not in `past`; its status body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = status(base, api_key, request_id).json()
        if body["progress"] is not None and body["progress"]["stage"] not in past:
            return body
        assert body["status"] in ("QUEUED", "PROCESSING"), f"ended before the progress looked for: {body}"
        assert time.monotonic() < deadline, f"no such progress after {timeout_s} s: {body}"
        time.sleep(0.02)
