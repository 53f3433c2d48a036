"""Checks on every request before any route reads it: the Host it names, a NUL character in its path, and
the size of its body. Each refusal is the standard JSON error, decided before the body is read."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from .errors import error_response

# Probes and scrapers name the machine however they reach it (a pod's IP, a node's name): these answer
# whatever the Host, and hand out no URL built from it.
_ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def _host_name(host: str) -> str:
    """'example.com:8000' -> 'example.com'; '[::1]:8000' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class GuardSettings:
    trusted_hosts: frozenset[str] | None  # None: any Host is trusted
    max_body_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> GuardSettings:
        if "*" in settings.trusted_hosts:
            hosts = None
        else:
            named = set(settings.trusted_hosts) or set(_LOOPBACK_NAMES)
            if settings.host not in _WILDCARD_ADDRESSES:
                named.add(settings.host)
            if settings.public_url:
                named.add(urlsplit(settings.public_url).hostname or "")
            hosts = frozenset(_host_name(host) for host in named)
        return cls(trusted_hosts=hosts, max_body_bytes=settings.body_limit)


class _TooLarge(Exception):
    pass


class RequestGuards:
    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._limited(scope, receive, send)

    def _refusal(self, scope: Scope):
        request_id = scope.get("state", {}).get("request_id")
        headers = Headers(scope=scope)
        if "\x00" in scope["path"]:
            # No request, key or model has one in its name: nothing by that name exists, and it must not
            # reach the database (PostgreSQL refuses NUL in text). Query parameters are checked one by one.
            return error_response(404, "not_found", "Nothing here has a NUL character (%00) in its name.",
                                  request_id)
        host = headers.get("host")
        trusted = self.settings.trusted_hosts
        if (trusted is not None and host is not None and scope["path"] not in _ANY_HOST_PATHS
                and _host_name(host) not in trusted):
            return error_response(
                400,
                "invalid_host",
                f"This server does not answer to the host {host[:100]!r}. Its operator lists the names it "
                "answers to in LTXSERVE_TRUSTED_HOSTS (or sets LTXSERVE_PUBLIC_URL).",
                request_id,
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return self._too_large(request_id)
        return None

    def _too_large(self, request_id: str | None):
        return error_response(
            413,
            "body_too_large",
            f"The request body is larger than {self.settings.max_body_bytes:,} bytes, the most this server "
            "reads (room for the largest image it accepts as a data URI). Send a smaller image, or its URL.",
            request_id,
        )

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body sent without Content-Length (chunked) is counted as it arrives and cut off at the limit.
        FastAPI turns any error while reading a body into its own 400, so the app's answer is replaced."""
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.settings.max_body_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await self._too_large(scope.get("state", {}).get("request_id"))(scope, receive, send)
