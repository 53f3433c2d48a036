"""What the embedded worker process tells the server that supervises it, as typed events (as cog's
`eventtypes.py` does), and the phases the supervisor reads from them.

Each event crosses the pipe as one JSON line, `{"event": <its tag>, ...its fields}`; `encode` and `decode`
are the only places that know the wire form, so the supervisor matches on types, never on strings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import ClassVar

from ..jobs import JobStatus


class Phase(StrEnum):
    """Where the embedded worker is, as /readyz reports it."""

    STARTING = "starting"  # the process is starting
    LOADING = "loading"  # it is loading its model
    READY = "ready"  # it takes jobs
    RESTARTING = "restarting"  # it exited; another starts after a backoff
    STOPPED = "stopped"  # the server is stopping


@dataclass(frozen=True)
class Loading:
    """The model is loading."""

    tag: ClassVar[str] = "loading"


@dataclass(frozen=True)
class LoadFailed:
    """The model did not load; the process exits with LOAD_FAILED next."""

    error: str
    tag: ClassVar[str] = "load_failed"


@dataclass(frozen=True)
class Ready:
    """The model is loaded and the worker claims jobs."""

    worker: str
    tag: ClassVar[str] = "ready"


@dataclass(frozen=True)
class JobChanged:
    """A job changed status in the worker's hands; the server's waiters and streams hear of it at once (on
    SQLite nothing else would tell them)."""

    id: str
    status: JobStatus
    tag: ClassVar[str] = "job"


@dataclass(frozen=True)
class Generated:
    """A job finished, in this many seconds (for the server's generation histogram)."""

    seconds: float
    tag: ClassVar[str] = "generated"


@dataclass(frozen=True)
class Problem:
    """Something the worker keeps retrying (the job store does not answer), or None once it has passed."""

    error: str | None
    tag: ClassVar[str] = "problem"


WorkerEvent = Loading | LoadFailed | Ready | JobChanged | Generated | Problem

_BY_TAG: dict[str, type[WorkerEvent]] = {kind.tag: kind for kind in (Loading, LoadFailed, Ready, JobChanged,
                                                                      Generated, Problem)}


def encode(event: WorkerEvent) -> str:
    return json.dumps({"event": event.tag, **asdict(event)}) + "\n"


def decode(line: str) -> WorkerEvent:
    """The event a line carries; ValueError if it is not one."""
    try:
        data = json.loads(line)
        kind = _BY_TAG[data.pop("event")]
        values = {item.name: data[item.name] for item in fields(kind)}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a worker event: {line[:200]!r}") from exc
    if kind is JobChanged:
        values["status"] = JobStatus(values["status"])
    if kind is Generated:
        values["seconds"] = float(values["seconds"])
    return kind(**values)
