"""What the sync and async clients share: when to retry, how the event stream is read, how a download
resumes. No I/O here."""

from __future__ import annotations

import json
import os
import random
import uuid

import httpx

from .errors import ApiError
from .models import Event, Progress

MODEL = "ltx-2-fast"
DEFAULT_SERVER = "http://127.0.0.1:8000"
# Answers that mean the request was not taken: a retry is safe.
RETRY_STATUSES = (429, 502, 503)


def connection(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The server's address and the key's header; `base_url` and `api_key` default to LTXSERVE_SERVER and
    LTXSERVE_API_KEY."""
    api_key = api_key or os.environ.get("LTXSERVE_API_KEY")
    if not api_key:
        raise ValueError("an API key is needed: pass api_key or set LTXSERVE_API_KEY")
    return (base_url or os.environ.get("LTXSERVE_SERVER") or DEFAULT_SERVER).rstrip("/"), {"x-api-key": api_key}


def idempotency_key() -> str:
    return f"ltxserve-client-{uuid.uuid4()}"


def backoff(base_s: float, attempt: int) -> float:
    # Jittered, so that clients cut off together do not come back together.
    return min(base_s * 2 ** (attempt - 1), 10.0) * random.uniform(0.75, 1.25)


def retry_wait(response: httpx.Response | None, attempt: int, retries: int, backoff_s: float) -> float | None:
    """Seconds to wait before trying again, or None: give up (the caller raises). `response` None: the
    connection failed. A 429 waits for its Retry-After."""
    if attempt >= retries:
        return None
    if response is None:
        return backoff(backoff_s, attempt + 1)
    if response.status_code not in RETRY_STATUSES:
        return None
    error = ApiError.of(response)
    return error.retry_after if error.retry_after is not None else backoff(backoff_s, attempt + 1)


def submit_body(params: dict, webhook_url: str | None) -> dict:
    return {**params, **({"webhook_url": webhook_url} if webhook_url else {})}


class EventParser:
    """Server-Sent Events as the server writes them, a line at a time: `id`, `event` and one JSON `data`
    line, then a blank line; comment lines (keep-alives) start with a colon."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def feed(self, line: str) -> Event | None:
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                self.fields[name] = value[1:] if value.startswith(" ") else value
            return None
        fields, self.fields = self.fields, {}
        if "data" not in fields:
            return None
        data = json.loads(fields["data"])
        return Event(int(fields["id"]) if "id" in fields else None, fields.get("event", "status"), data["status"],
                     Progress.of(data.get("progress")), data.get("error"), data.get("queue_position"))


def total_size(response: httpx.Response, offset: int) -> int | None:
    """The whole file's size, from a 206's Content-Range or a 200's Content-Length."""
    content_range = response.headers.get("content-range")  # bytes 100-999/1000
    if content_range and "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("content-length")
    return offset + int(length) if length is not None else None


def failed(record) -> ApiError:
    return ApiError(422, record.code or record.status.lower(), record.error or record.status, record.request_id)
