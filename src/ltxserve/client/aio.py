"""`AsyncClient`: the same calls as `Client`, for asyncio (notebooks, async web apps), carrying out the same
plans from `core` with httpx's async client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any, Never, TypeVar

import httpx

from . import core
from .base import BaseClient
from .models import Event, Record, Status

E = TypeVar("E")
T = TypeVar("T")


class AsyncClient(BaseClient[httpx.AsyncClient]):
    _kind = httpx.AsyncClient

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.links.aclose()

    async def run(self, **params: Any) -> bytes:
        return await self._run(core.run(self, params))

    async def submit(self, *, idempotency_key: str | None = None, webhook_url: str | None = None,
                     **params: Any) -> AsyncRequest:
        return AsyncRequest(self, await self._run(core.submit(self, params, idempotency_key, webhook_url)))

    def request(self, request_id: str) -> AsyncRequest:
        return AsyncRequest(self, request_id)

    async def credits(self) -> float:
        return await self._run(core.credits(self))

    async def requests(self, limit: int = 20) -> AsyncIterator[Record]:
        """Your requests, newest first, fetched a page at a time as you iterate."""
        async with aclosing(self._drive(core.requests(self, limit))) as records:
            async for record in records:
                yield record

    async def send(self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        return await self._run(core.send(self, method, path, accept, kwargs))

    async def _run(self, plan: core.Plan[Never, T]) -> T:
        (value,) = [value async for value in self._drive(core.result(plan))]
        return value

    async def _drive(self, plan: core.Plan[E, Any]) -> AsyncGenerator[E, None]:
        """Does what `plan` asks, a step at a time, and yields what it emits."""
        steps = core.Steps(plan)
        # The last answer, its stream closed by the next call, with its body as Reads take it.
        opened: dict[httpx.Response, AsyncIterator[bytes]] = {}
        try:
            for action in steps:
                try:
                    if isinstance(action, core.Emit):
                        yield action.value
                    elif isinstance(action, core.Sleep):
                        await asyncio.sleep(action.seconds)
                    elif isinstance(action, core.Read):
                        body = opened[action.response]
                        steps.give(await action.response.aread() if action.whole else await anext(body, None))
                    else:
                        for response in opened:
                            await response.aclose()
                        response = await self._call(action)
                        opened = {response: response.aiter_bytes()}
                        steps.give(response)
                except httpx.TransportError as failure:
                    steps.fail(failure)
        finally:
            for response in opened:
                await response.aclose()
            plan.close()

    async def _call(self, call: core.Call) -> httpx.Response:
        http = self.links if call.link else self.http
        if call.stream:
            return await http.send(http.build_request(call.method, call.url, **call.options), stream=True)
        return await http.request(call.method, call.url, **call.options)


class AsyncRequest:
    def __init__(self, client: AsyncClient, request_id: str) -> None:
        self.client = client
        self.id = request_id

    def __repr__(self) -> str:
        return f"AsyncRequest({self.id!r})"

    async def status(self) -> Status:
        return await self.client._run(core.status(self.client, self.id))

    async def record(self) -> Record:
        return await self.client._run(core.record(self.client, self.id))

    async def cancel(self) -> Status:
        return await self.client._run(core.cancel(self.client, self.id))

    async def events(self, *, read_timeout_s: float = 60.0) -> AsyncIterator[Event]:
        async with aclosing(self.client._drive(core.events(self.client, self.id, read_timeout_s))) as events:
            async for event in events:
                yield event

    async def wait(self, on_progress: Callable[[Status], None] | None = None) -> Record:
        """As `Request.wait`; bound it with `asyncio.timeout(...)`."""
        return await self.client._run(core.wait(self.client, self.id, on_progress, None))

    async def download(self, path: str | Path) -> Path:
        return await self.client._run(core.download(self.client, self.id, path))
