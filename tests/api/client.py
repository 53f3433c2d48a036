"""Calls shaped like the hosted API's own Python snippet, and checks of its answer's shape."""

from __future__ import annotations

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
