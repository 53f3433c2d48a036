"""`AsyncClient`: the same calls as `Client`, for asyncio (notebooks, async web apps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from . import protocol
from .errors import ApiError
from .models import Event, Record, Status
from .protocol import MODEL


class AsyncClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0,
                 retries: int = 4, backoff_s: float = 0.5, sync_timeout: float = 900.0) -> None:
        """`base_url` and `api_key` default to LTXSERVE_SERVER and LTXSERVE_API_KEY."""
        self.base_url, headers = protocol.connection(base_url, api_key)
        self.retries = retries
        self.backoff_s = backoff_s
        self.sync_timeout = sync_timeout
        self.http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)
        self.links = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.links.aclose()

    async def run(self, **params: Any) -> bytes:
        response = await self.send("POST", f"/v1/{MODEL}", json=params, timeout=self.sync_timeout)
        return response.content

    async def submit(self, *, idempotency_key: str | None = None, webhook_url: str | None = None,
                     **params: Any) -> AsyncRequest:
        headers = {"Idempotency-Key": idempotency_key or protocol.idempotency_key()}
        answer = await self.send("POST", f"/v2/{MODEL}", json=protocol.submit_body(params, webhook_url),
                                 headers=headers)
        return AsyncRequest(self, answer.json()["request_id"])

    def request(self, request_id: str) -> AsyncRequest:
        return AsyncRequest(self, request_id)

    async def credits(self) -> float:
        return float((await self.send("GET", "/v1/get-user-credits")).json()["credits"])

    async def requests(self, limit: int = 20) -> AsyncIterator[Record]:
        """Your requests, newest first, fetched a page at a time as you iterate."""
        cursor = None
        while True:
            params = {"limit": min(limit, 100), **({"cursor": cursor} if cursor else {})}
            page = (await self.send("GET", "/v2/requests", params=params)).json()
            for data in page["requests"]:
                yield Record.of(data)
                limit -= 1
                if limit == 0:
                    return
            if (cursor := page["next_cursor"]) is None:
                return

    async def send(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                if (wait := protocol.retry_wait(None, attempt, self.retries, self.backoff_s)) is None:
                    raise
            else:
                if response.is_success or response.status_code in accept:
                    return response
                if (wait := protocol.retry_wait(response, attempt, self.retries, self.backoff_s)) is None:
                    raise ApiError.of(response)
            attempt += 1
            await asyncio.sleep(wait)


class AsyncRequest:
    def __init__(self, client: AsyncClient, request_id: str) -> None:
        self.client = client
        self.id = request_id

    def __repr__(self) -> str:
        return f"AsyncRequest({self.id!r})"

    async def status(self) -> Status:
        response = await self.client.send("GET", f"/v2/requests/{self.id}/status", accept=(422,))
        return Status.of(response.json())

    async def record(self) -> Record:
        return Record.of((await self.client.send("GET", f"/v2/requests/{self.id}", accept=(422,))).json())

    async def cancel(self) -> Status:
        return Status.of((await self.client.send("POST", f"/v2/requests/{self.id}/cancel")).json())

    async def events(self, *, read_timeout_s: float = 60.0) -> AsyncIterator[Event]:
        last_id: int | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
            heard = False
            try:
                async with self.client.http.stream("GET", f"/v2/requests/{self.id}/events", headers=headers,
                                                   timeout=httpx.Timeout(10.0, read=read_timeout_s)) as response:
                    if not response.is_success:
                        await response.aread()
                        raise ApiError.of(response)
                    parser = protocol.EventParser()
                    async for line in response.aiter_lines():
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
                await asyncio.sleep(protocol.backoff(self.client.backoff_s, failures))
                continue
            if not heard and (await self.status()).finished:
                return

    async def wait(self, on_progress: Callable[[Status], None] | None = None) -> Record:
        """As `Request.wait`; bound it with `asyncio.timeout(...)`."""
        first = await self.status()
        if on_progress is not None:
            on_progress(first)
        if not first.finished:
            async for event in self.events():
                if on_progress is not None:
                    on_progress(event.as_status(self.id))
        record = await self.record()
        if record.status != "COMPLETED":
            raise protocol.failed(record)
        return record

    async def download(self, path: str | Path) -> Path:
        path = Path(path)
        record = await self.record()
        if record.output is None:
            raise ApiError(409, "not_ready", f"request {self.id} is {record.status}; nothing to download yet", self.id)
        partial = path.with_name(path.name + ".part")
        written, failures = 0, 0
        with partial.open("wb") as out:
            while True:
                headers = {"Range": f"bytes={written}-"} if written else {}
                try:
                    async with self.client.links.stream("GET", record.output, headers=headers) as response:
                        if response.status_code == 200 and written:
                            out.seek(0)
                            out.truncate()
                            written = 0
                        elif not response.is_success:
                            await response.aread()
                            raise ApiError.of(response)
                        total = protocol.total_size(response, written)
                        async for chunk in response.aiter_bytes():
                            out.write(chunk)
                            written += len(chunk)
                    if total is None or written >= total:
                        break
                except httpx.TransportError:
                    failures += 1
                    if failures > self.client.retries:
                        raise
                    await asyncio.sleep(protocol.backoff(self.client.backoff_s, failures))
        partial.replace(path)
        return path
