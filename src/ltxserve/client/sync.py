"""The client: `Client` for calls, `Request` for one submitted request (status, events, wait, cancel,
download). Retries are safe by construction: `submit` sends an Idempotency-Key of its own, so a retry after a
lost answer returns the request the first attempt made, charged once; the sync call is retried only on
answers that mean nothing was charged (429, 502, 503) or after the connection broke, which cancels a sync
request on the server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from . import protocol
from .errors import ApiError
from .models import Event, Record, Status
from .protocol import MODEL


class Client:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0,
                 retries: int = 4, backoff_s: float = 0.5, sync_timeout: float = 900.0) -> None:
        """`base_url` and `api_key` default to LTXSERVE_SERVER and LTXSERVE_API_KEY."""
        self.base_url, headers = protocol.connection(base_url, api_key)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sync_timeout = sync_timeout
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        # Signed output links need no key, and a redirect to a bucket must not carry it.
        self.links = httpx.Client(timeout=timeout, follow_redirects=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.links.close()

    def run(self, **params: Any) -> bytes:
        """Generate and return the MP4 in one call (`POST /v1/ltx-2-fast`). Raises ApiError."""
        return self.send("POST", f"/v1/{MODEL}", json=params, timeout=self.sync_timeout).content

    def submit(self, *, idempotency_key: str | None = None, webhook_url: str | None = None,
               **params: Any) -> Request:
        """Queue a request (`POST /v2/ltx-2-fast`); retried under one Idempotency-Key."""
        headers = {"Idempotency-Key": idempotency_key or protocol.idempotency_key()}
        answer = self.send("POST", f"/v2/{MODEL}", json=protocol.submit_body(params, webhook_url), headers=headers)
        return Request(self, answer.json()["request_id"])

    def request(self, request_id: str) -> Request:
        """A request submitted earlier, by its id."""
        return Request(self, request_id)

    def credits(self) -> float:
        return float(self.send("GET", "/v1/get-user-credits").json()["credits"])

    def requests(self, limit: int = 20) -> Iterator[Record]:
        """Your requests, newest first, fetched a page at a time as you iterate."""
        cursor = None
        while True:
            params = {"limit": min(limit, 100), **({"cursor": cursor} if cursor else {})}
            page = self.send("GET", "/v2/requests", params=params).json()
            for data in page["requests"]:
                yield Record.of(data)
                limit -= 1
                if limit == 0:
                    return
            if (cursor := page["next_cursor"]) is None:
                return

    def send(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One call, retried on connection errors and on 429/502/503 (after Retry-After when given); raises
        ApiError for any other answer that is not a 2xx or in `accept`."""
        attempt = 0
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                if (wait := protocol.retry_wait(None, attempt, self.retries, self.backoff_s)) is None:
                    raise
            else:
                if response.is_success or response.status_code in accept:
                    return response
                if (wait := protocol.retry_wait(response, attempt, self.retries, self.backoff_s)) is None:
                    raise ApiError.of(response)
            attempt += 1
            time.sleep(wait)


class Request:
    """A request on the server: everything about it is asked of the server when called."""

    def __init__(self, client: Client, request_id: str) -> None:
        self.client = client
        self.id = request_id

    def __repr__(self) -> str:
        return f"Request({self.id!r})"

    def status(self) -> Status:
        # A FAILED request is answered 422 with its whole body, as the hosted API does.
        return Status.of(self.client.send("GET", f"/v2/requests/{self.id}/status", accept=(422,)).json())

    def record(self) -> Record:
        return Record.of(self.client.send("GET", f"/v2/requests/{self.id}", accept=(422,)).json())

    def cancel(self) -> Status:
        return Status.of(self.client.send("POST", f"/v2/requests/{self.id}/cancel").json())

    def events(self, *, read_timeout_s: float = 60.0) -> Iterator[Event]:
        """Every status and progress change, in order, until the request ends. A broken stream is resumed
        where it stopped (Last-Event-ID), so no event is lost or repeated."""
        last_id: int | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
            heard = False
            try:
                with self.client.http.stream("GET", f"/v2/requests/{self.id}/events", headers=headers,
                                             timeout=httpx.Timeout(10.0, read=read_timeout_s)) as response:
                    if not response.is_success:
                        response.read()
                        raise ApiError.of(response)
                    parser = protocol.EventParser()
                    for line in response.iter_lines():
                        if (event := parser.feed(line)) is None:
                            continue
                        heard, failures = True, 0
                        last_id = event.id if event.id is not None else last_id
                        yield event
                        if event.finished:
                            return
            except httpx.TransportError:
                failures += 1
                if failures > self.client.retries:
                    raise
                time.sleep(protocol.backoff(self.client.backoff_s, failures))
                continue
            if not heard and self.status().finished:
                return  # resumed after the last event: nothing more will come

    def wait(self, on_progress: Callable[[Status], None] | None = None, timeout: float | None = None) -> Record:
        """Follow the request until it ends; its record. `on_progress` gets the status first (with the queue
        position), then each change. Raises ApiError if it FAILED or was CANCELED, TimeoutError past
        `timeout` seconds (the request goes on: cancel it if it is no longer wanted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        first = self.status()
        if on_progress is not None:
            on_progress(first)
        if not first.finished:
            for event in self.events(read_timeout_s=min(60.0, timeout or 60.0)):
                if on_progress is not None:
                    on_progress(event.as_status(self.id))
                if deadline is not None and time.monotonic() > deadline and not event.finished:
                    raise TimeoutError(f"request {self.id} still {event.status} after {timeout:g} s")
        record = self.record()
        if record.status != "COMPLETED":
            raise protocol.failed(record)
        return record

    def download(self, path: str | Path) -> Path:
        """Write the MP4 to `path`. A connection that breaks mid-way is resumed with an HTTP Range request
        from the bytes already written."""
        path = Path(path)
        record = self.record()
        if record.output is None:
            raise ApiError(409, "not_ready", f"request {self.id} is {record.status}; nothing to download yet", self.id)
        partial = path.with_name(path.name + ".part")
        written, failures = 0, 0
        with partial.open("wb") as out:
            while True:
                headers = {"Range": f"bytes={written}-"} if written else {}
                try:
                    with self.client.links.stream("GET", record.output, headers=headers) as response:
                        if response.status_code == 200 and written:  # the Range was ignored: start over
                            out.seek(0)
                            out.truncate()
                            written = 0
                        elif not response.is_success:
                            response.read()
                            raise ApiError.of(response)
                        total = protocol.total_size(response, written)
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                            written += len(chunk)
                    if total is None or written >= total:
                        break
                except httpx.TransportError:
                    failures += 1
                    if failures > self.client.retries:
                        raise
                    time.sleep(protocol.backoff(self.client.backoff_s, failures))
        partial.replace(path)
        return path
