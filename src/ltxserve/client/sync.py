"""The client: `Client` for calls, `Request` for one submitted request (status, events, wait, cancel,
download). Retries are safe by construction: `submit` sends an Idempotency-Key of its own, so a retry after a
lost answer returns the request the first attempt made, charged once; the sync call is retried only on
answers that mean nothing was charged (429, 502, 503) or after the connection broke, which cancels a sync
request on the server. What each call does is planned in `core`; this module carries the plans out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Never, TypeVar

import httpx

from . import core
from .base import BaseClient
from .models import Event, Record, Status

E = TypeVar("E")
T = TypeVar("T")


class Client(BaseClient[httpx.Client]):
    _kind = httpx.Client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.links.close()

    def run(self, **params: Any) -> bytes:
        """Generate and return the MP4 in one call (`POST /v1/ltx-2-fast`). Raises ApiError."""
        return self._run(core.run(self, params))

    def submit(self, *, idempotency_key: str | None = None, webhook_url: str | None = None,
               **params: Any) -> Request:
        """Queue a request (`POST /v2/ltx-2-fast`); retried under one Idempotency-Key."""
        return Request(self, self._run(core.submit(self, params, idempotency_key, webhook_url)))

    def request(self, request_id: str) -> Request:
        """A request submitted earlier, by its id."""
        return Request(self, request_id)

    def credits(self) -> float:
        return self._run(core.credits(self))

    def requests(self, limit: int = 20) -> Iterator[Record]:
        """Your requests, newest first, fetched a page at a time as you iterate."""
        yield from self._drive(core.requests(self, limit))

    def send(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One call, retried on connection errors and on 429/502/503 (after Retry-After when given); raises
        ApiError for any other answer that is not a 2xx or in `accept`."""
        return self._run(core.send(self, method, path, accept, kwargs))

    def _run(self, plan: core.Plan[Never, T]) -> T:
        (value,) = self._drive(core.result(plan))
        return value

    def _drive(self, plan: core.Plan[E, Any]) -> Iterator[E]:
        """Does what `plan` asks, a step at a time, and yields what it emits."""
        steps = core.Steps(plan)
        # The last answer, its stream closed by the next call, with its body as Reads take it.
        opened: dict[httpx.Response, Iterator[bytes]] = {}
        try:
            for action in steps:
                try:
                    if isinstance(action, core.Emit):
                        yield action.value
                    elif isinstance(action, core.Sleep):
                        time.sleep(action.seconds)
                    elif isinstance(action, core.Read):
                        body = opened[action.response]
                        steps.give(action.response.read() if action.whole else next(body, None))
                    else:
                        for response in opened:
                            response.close()
                        response = self._call(action)
                        opened = {response: response.iter_bytes()}
                        steps.give(response)
                except httpx.TransportError as failure:
                    steps.fail(failure)
        finally:
            for response in opened:
                response.close()
            plan.close()

    def _call(self, call: core.Call) -> httpx.Response:
        http = self.links if call.link else self.http
        if call.stream:
            return http.send(http.build_request(call.method, call.url, **call.options), stream=True)
        return http.request(call.method, call.url, **call.options)


class Request:
    """A request on the server: everything about it is asked of the server when called."""

    def __init__(self, client: Client, request_id: str) -> None:
        self.client = client
        self.id = request_id

    def __repr__(self) -> str:
        return f"Request({self.id!r})"

    def status(self) -> Status:
        return self.client._run(core.status(self.client, self.id))

    def record(self) -> Record:
        return self.client._run(core.record(self.client, self.id))

    def cancel(self) -> Status:
        return self.client._run(core.cancel(self.client, self.id))

    def events(self, *, read_timeout_s: float = 60.0) -> Iterator[Event]:
        """Every status and progress change, in order, until the request ends. A broken stream is resumed
        where it stopped (Last-Event-ID), so no event is lost or repeated."""
        yield from self.client._drive(core.events(self.client, self.id, read_timeout_s))

    def wait(self, on_progress: Callable[[Status], None] | None = None, timeout: float | None = None) -> Record:
        """Follow the request until it ends; its record. `on_progress` gets the status first (with the queue
        position), then each change. Raises ApiError if it FAILED or was CANCELED, TimeoutError past
        `timeout` seconds (the request goes on: cancel it if it is no longer wanted)."""
        return self.client._run(core.wait(self.client, self.id, on_progress, timeout))

    def download(self, path: str | Path) -> Path:
        """Write the MP4 to `path`. A connection that breaks mid-way is resumed with an HTTP Range request
        from the bytes already written."""
        return self.client._run(core.download(self.client, self.id, path))
