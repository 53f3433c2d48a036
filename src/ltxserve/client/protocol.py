"""The API as the client meets it on the wire: when an answer calls for a retry and how long to wait,
Server-Sent Events, a download's size. No I/O here."""

from __future__ import annotations

import codecs
import json
import random
import re
import uuid

import httpx

from .errors import ApiError
from .models import Event, Progress, Record

MODEL = "ltx-2-fast"
# Answers that mean the request was not taken: a retry is safe.
RETRY_STATUSES = (429, 502, 503)
# Server-Sent Events end a line with any of these (the spec's three).
LINE_END = re.compile(r"\r\n|\r|\n")


def idempotency_key() -> str:
    return f"ltxserve-client-{uuid.uuid4()}"


def backoff(base_s: float, attempt: int) -> float:
    # Jittered, so that clients cut off together do not come back together.
    return min(base_s * 2 ** (attempt - 1), 10.0) * random.uniform(0.75, 1.25)


def retry_wait(failures: int, retries: int, backoff_s: float, response: httpx.Response | None = None) -> float | None:
    """Seconds to wait before trying again after `failures` failed attempts in a row, or None: give up (the
    caller raises). `response`: the last attempt's answer; None, its connection failed. A 429 waits for its
    Retry-After."""
    if failures > retries:
        return None
    if response is None:
        return backoff(backoff_s, failures)
    if response.status_code not in RETRY_STATUSES:
        return None
    error = ApiError.of(response)
    return error.retry_after if error.retry_after is not None else backoff(backoff_s, failures)


def submit_body(params: dict, webhook_url: str | None) -> dict:
    return {**params, **({"webhook_url": webhook_url} if webhook_url else {})}


class EventParser:
    """Server-Sent Events as the server writes them: `id`, `event` and one JSON `data` line, then a blank
    line; comment lines (keep-alives) start with a colon. Fed the stream's bytes as they arrive, so a line,
    and a character, may be split between two chunks."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.unended = ""

    def feed(self, chunk: bytes) -> list[Event]:
        text = self.unended + self.text.decode(chunk)
        # A "\r" last may be the first half of a "\r\n": it is kept until the next chunk says.
        cut = len(text) - 1 if text.endswith("\r") else len(text)
        *lines, unended = LINE_END.split(text[:cut])
        self.unended = unended + text[cut:]
        return [event for line in lines if (event := self._line(line)) is not None]

    def _line(self, line: str) -> Event | None:
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


def failed(record: Record) -> ApiError:
    return ApiError(422, record.code or record.status.lower(), record.error or record.status, record.request_id)
