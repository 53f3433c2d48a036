"""The server's errors as one exception: its HTTP status, machine-readable code, request id and message."""

from __future__ import annotations

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, request_id: str | None = None,
                 retry_after: float | None = None, details: object = None) -> None:
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.details = details

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        """The error a non-2xx answer carries (the server's JSON body, or what the response itself says)."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        retry_after = response.headers.get("retry-after")
        return cls(
            response.status_code,
            str(body.get("code") or f"http_{response.status_code}"),
            str(body.get("error") or response.reason_phrase or response.text[:200]),
            body.get("request_id") or response.headers.get("x-request-id"),
            float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None,
            body.get("details"),
        )
