"""Every client operation written once, as a plan that does no I/O: a generator that yields what it needs
done (`Call` the server, `Read` a streamed body, `Sleep`, `Emit` a value to the caller) and is sent back
the outcome, or thrown the `httpx.TransportError` it ended in. What to ask, whether and when to retry, how
a stream resumes and what an answer means are decided here; `Client` and `AsyncClient` only carry plans
out, with httpx's sync or async client and clock. A download's file is written here, the same for both."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Never, Protocol, TypeVar

import httpx

from . import protocol
from .errors import ApiError
from .models import Event, Record, Status
from .protocol import MODEL

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)
T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """An HTTP request: answered with its response, its body read, or with the head only when `stream` (the
    body then comes by `Read`). `link`: an output link, sent without the key and following redirects."""

    method: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)  # httpx's: params, json, headers, timeout
    stream: bool = False
    link: bool = False


@dataclass(frozen=True)
class Read:
    """The next chunk of a streamed `response`'s body, None at its end; `whole`: all the rest, into the
    response itself (an error's body, for `ApiError.of`)."""

    response: httpx.Response
    whole: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Emit(Generic[E_co]):
    """A value for the caller: an iterator's next item, or what the plan comes to."""

    value: E_co


Action = Call | Read | Sleep | Emit[E]
# A plan that emits E's and comes to a T; it is sent each action's outcome.
Plan = Generator[Action[E], Any, T]


class Settings(Protocol):
    """What a plan reads of its client, afresh each time: a client's settings may be changed after it is made."""

    retries: int
    backoff_s: float
    sync_timeout: float


class Steps(Generic[E]):
    """A plan taken a step at a time: iterating gives what it asks next. A Call's or Read's outcome is handed
    back by `give`, or the error it ended in by `fail`, before the next step."""

    def __init__(self, plan: Plan[E, Any]) -> None:
        self.plan = plan
        self.outcome: Any = None
        self.failure: httpx.TransportError | None = None

    def __iter__(self) -> Iterator[Action[E]]:
        return self

    def __next__(self) -> Action[E]:
        outcome, failure, self.outcome, self.failure = self.outcome, self.failure, None, None
        return self.plan.send(outcome) if failure is None else self.plan.throw(failure)

    def give(self, outcome: object) -> None:
        self.outcome = outcome

    def fail(self, failure: httpx.TransportError) -> None:
        self.failure = failure


def result(plan: Plan[Never, T]) -> Plan[T, None]:
    """`plan`, what it returns emitted: how a shell runs a plan that comes to one value."""
    yield Emit((yield from plan))


def send(settings: Settings, method: str, path: str, accept: tuple[int, ...] = (),
         options: dict[str, Any] | None = None) -> Plan[Never, httpx.Response]:
    """`Client.send`: one call, retried on connection errors and on 429/502/503."""
    attempt = 0
    while True:
        attempt += 1
        try:
            response = yield Call(method, path, options or {})
        except httpx.TransportError as failure:
            wait = _wait_or_raise(settings, attempt, failure)
        else:
            if response.is_success or response.status_code in accept:
                return response
            if (again := protocol.retry_wait(attempt, settings.retries, settings.backoff_s, response)) is None:
                raise ApiError.of(response)
            wait = again
        yield Sleep(wait)


def _wait_or_raise(settings: Settings, failures: int, failure: httpx.TransportError) -> float:
    """The pause before trying again after `failures` broken connections in a row; past `retries`, the last
    one is raised."""
    if (wait := protocol.retry_wait(failures, settings.retries, settings.backoff_s)) is None:
        raise failure
    return wait


def run(settings: Settings, params: dict[str, Any]) -> Plan[Never, bytes]:
    response = yield from send(settings, "POST", f"/v1/{MODEL}", options={"json": params,
                                                                           "timeout": settings.sync_timeout})
    return response.content


def submit(settings: Settings, params: dict[str, Any], idempotency_key: str | None,
           webhook_url: str | None) -> Plan[Never, str]:
    """The new request's id. Its Idempotency-Key is chosen once, so that every retry names the same request."""
    options = {"json": protocol.submit_body(params, webhook_url),
               "headers": {"Idempotency-Key": idempotency_key or protocol.idempotency_key()}}
    return (yield from send(settings, "POST", f"/v2/{MODEL}", options=options)).json()["request_id"]


def credits(settings: Settings) -> Plan[Never, float]:
    return float((yield from send(settings, "GET", "/v1/get-user-credits")).json()["credits"])


def requests(settings: Settings, limit: int) -> Plan[Record, None]:
    cursor = None
    while True:
        params = {"limit": min(limit, 100), **({"cursor": cursor} if cursor else {})}
        page = (yield from send(settings, "GET", "/v2/requests", options={"params": params})).json()
        for data in page["requests"]:
            yield Emit(Record.of(data))
            limit -= 1
            if limit == 0:
                return
        if (cursor := page["next_cursor"]) is None:
            return


def status(settings: Settings, request_id: str) -> Plan[Never, Status]:
    # A FAILED request is answered 422 with its whole body, as the hosted API does.
    return Status.of((yield from send(settings, "GET", f"/v2/requests/{request_id}/status", (422,))).json())


def record(settings: Settings, request_id: str) -> Plan[Never, Record]:
    return Record.of((yield from send(settings, "GET", f"/v2/requests/{request_id}", (422,))).json())


def cancel(settings: Settings, request_id: str) -> Plan[Never, Status]:
    return Status.of((yield from send(settings, "POST", f"/v2/requests/{request_id}/cancel")).json())


def _raise_if_error(response: httpx.Response) -> Plan[Never, None]:
    """Raises the error a streamed answer that is not a 2xx carries."""
    if not response.is_success:
        yield Read(response, whole=True)
        raise ApiError.of(response)


def events(settings: Settings, request_id: str, read_timeout_s: float) -> Plan[Event, None]:
    """`Request.events`: a broken stream is resumed after the last event heard (Last-Event-ID)."""
    last_id: int | None = None
    failures = 0
    while True:
        headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
        heard = False
        try:
            response = yield Call("GET", f"/v2/requests/{request_id}/events", stream=True, options={
                "headers": headers, "timeout": httpx.Timeout(10.0, read=read_timeout_s)})
            yield from _raise_if_error(response)
            parser = protocol.EventParser()
            while (chunk := (yield Read(response))) is not None:
                for event in parser.feed(chunk):
                    heard, failures = True, 0
                    last_id = event.id if event.id is not None else last_id
                    yield Emit(event)
                    if event.finished:
                        return
        except httpx.TransportError as failure:
            failures += 1
            yield Sleep(_wait_or_raise(settings, failures, failure))
            continue
        if not heard and (yield from status(settings, request_id)).finished:
            return  # resumed after the last event: nothing more will come


def wait(settings: Settings, request_id: str, on_progress: Callable[[Status], None] | None,
         timeout: float | None) -> Plan[Never, Record]:
    """`Request.wait`: the status, then each event, to `on_progress`; the record, or its failure raised."""
    deadline = None if timeout is None else time.monotonic() + timeout
    first = yield from status(settings, request_id)
    if on_progress is not None:
        on_progress(first)
    if not first.finished:
        with closing(events(settings, request_id, min(60.0, timeout or 60.0))) as following:
            steps = Steps(following)
            for action in steps:
                if not isinstance(action, Emit):
                    try:
                        steps.give((yield action))
                    except httpx.TransportError as failure:
                        steps.fail(failure)
                    continue
                event = action.value
                if on_progress is not None:
                    on_progress(event.as_status(request_id))
                if deadline is not None and time.monotonic() > deadline and not event.finished:
                    raise TimeoutError(f"request {request_id} still {event.status} after {timeout:g} s")
    done = yield from record(settings, request_id)
    if done.status != "COMPLETED":
        raise protocol.failed(done)
    return done


def download(settings: Settings, request_id: str, path: str | Path) -> Plan[Never, Path]:
    """`Request.download`: written to `path`.part, resumed with a Range from its length when the connection
    breaks, then renamed to `path`."""
    path = Path(path)
    done = yield from record(settings, request_id)
    if done.output is None:
        raise ApiError(409, "not_ready", f"request {request_id} is {done.status}; nothing to download yet",
                       request_id)
    partial = path.with_name(path.name + ".part")
    written, failures = 0, 0
    with partial.open("wb") as out:
        while True:
            headers = {"Range": f"bytes={written}-"} if written else {}
            try:
                response = yield Call("GET", done.output, {"headers": headers}, stream=True, link=True)
                yield from _raise_if_error(response)
                if response.status_code == 200 and written:  # the Range was ignored: start over
                    out.seek(0)
                    out.truncate()
                    written = 0
                total = protocol.total_size(response, written)
                while (chunk := (yield Read(response))) is not None:
                    out.write(chunk)
                    written += len(chunk)
                if total is None or written >= total:
                    break
            except httpx.TransportError as failure:
                failures += 1
                yield Sleep(_wait_or_raise(settings, failures, failure))
    partial.replace(path)
    return path
