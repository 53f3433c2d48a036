"""Handing out finished clips: signed links a browser can play and seek without headers, and the
response that serves a result from whichever storage holds it."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from urllib.parse import urlencode

from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from ..jobs import JobView
from ..jobs.records import Records
from ..storage import ResultStorage


class OutputLinks:
    """`/v2/requests/{id}/output?expires=...&signature=...`, valid until the result's deletion time and
    signed with a secret kept in the database, so every server process sharing it accepts the link."""

    def __init__(self, records: Records, ttl_s: float) -> None:
        self._records = records
        self.ttl = timedelta(seconds=ttl_s)
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            self._secret = self._records.server_secret("output_url").encode()
        return self._secret

    def _signature(self, job_id: str, expires: int) -> str:
        return hmac.new(self._key(), f"{job_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def expires_at(self, job: JobView) -> int:
        assert job.finished_at is not None, "only a finished job has an output"
        return int((job.finished_at + self.ttl).timestamp())

    def url(self, base: str, job: JobView) -> str:
        expires = self.expires_at(job)
        query = urlencode({"expires": expires, "signature": self._signature(job.id, expires)})
        return f"{base}/v2/requests/{job.id}/output?{query}"

    def valid(self, job_id: str, expires: int, signature: str) -> bool:
        # Bytes, not str: compare_digest refuses non-ASCII text, and a signature is whatever the URL says.
        expected = self._signature(job_id, expires).encode()
        return expires >= time.time() and hmac.compare_digest(signature.encode("utf-8", "replace"), expected)


class Mp4Response(FileResponse):
    # A clip is tens of megabytes: a megabyte a read (not Starlette's 64 KB) moves it in a sixteenth of the
    # file reads and thread hops.
    chunk_size = 1024 * 1024


def serve_result(storage: ResultStorage, key: str, filename: str, headers: dict[str, str]) -> Response:
    """The MP4 itself: a local file (with Range), or streamed from object storage."""
    path = storage.local_path(key)
    if path is not None:
        return Mp4Response(path, media_type="video/mp4", headers=headers, filename=filename)
    chunks, size = storage.stream(key)
    headers = {**headers, "content-length": str(size), "content-disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chunks, media_type="video/mp4", headers=headers)


def result_location(storage: ResultStorage, key: str, filename: str, expires_in_s: int) -> Response:
    """For players: the file with Range support, or a redirect to object storage's own signed URL."""
    url = storage.presigned_url(key, expires_in_s)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    return serve_result(storage, key, filename, {})
