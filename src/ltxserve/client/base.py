"""How `Client` and `AsyncClient` are made, written once for both: the server and key, the timeouts, and the
retry settings their plans read."""

from __future__ import annotations

import os
from typing import Generic, TypeVar

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8000"

C = TypeVar("C", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[C]):
    _kind: type[C]  # httpx's client, sync or async

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0,
                 retries: int = 4, backoff_s: float = 0.5, sync_timeout: float = 900.0) -> None:
        """`base_url` and `api_key` default to LTXSERVE_SERVER and LTXSERVE_API_KEY."""
        api_key = api_key or os.environ.get("LTXSERVE_API_KEY")
        if not api_key:
            raise ValueError("an API key is needed: pass api_key or set LTXSERVE_API_KEY")
        self.base_url = (base_url or os.environ.get("LTXSERVE_SERVER") or DEFAULT_SERVER).rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.sync_timeout = sync_timeout
        self.http: C = self._kind(base_url=self.base_url, headers={"x-api-key": api_key}, timeout=timeout)
        # Signed output links need no key, and a redirect to a bucket must not carry it.
        self.links: C = self._kind(timeout=timeout, follow_redirects=True)
