"""The two pipes between `ltxserve serve` and the worker process it supervises.

Server to worker: one byte whenever a job is queued, so the worker claims it at once (on SQLite nothing
else crosses processes). Worker to server: one typed event per line (events.py: the model loading, loaded
or failing, a job changing status, a generation's seconds, a problem it keeps retrying), so the server's
waiters wake at once and /readyz and /metrics say what the worker is doing.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

from .events import WorkerEvent, decode, encode

log = logging.getLogger(__name__)

WAKE = b"w"
# The worker's exit status when its model does not load (it has sent the reason as an event first).
LOAD_FAILED = 3

_PR_SET_PDEATHSIG = 1


class WorkerSide:
    """The worker's end: wake-ups in, events out. A closed wake pipe means the server is gone."""

    def __init__(self, wake_fd: int, events_fd: int) -> None:
        self._wake = os.fdopen(wake_fd, "rb", buffering=0)
        self._events = os.fdopen(events_fd, "w", buffering=1)
        self._lock = threading.Lock()

    @classmethod
    def attach(cls, spec: str) -> WorkerSide:
        """From `--supervised SERVER_PID,WAKE_FD,EVENTS_FD`; dies with the server from here on."""
        server_pid, wake_fd, events_fd = (int(part) for part in spec.split(","))
        _die_with(server_pid)
        return cls(wake_fd, events_fd)

    def send(self, event: WorkerEvent) -> None:
        line = encode(event)
        try:
            with self._lock:
                self._events.write(line)
        except (BrokenPipeError, ValueError):
            pass  # the server is gone; the wake pipe's end says so to the worker loop

    def listen(self, on_wake: Callable[[], None], on_server_gone: Callable[[], None]) -> None:
        def read() -> None:
            while self._wake.read(4096):
                on_wake()
            on_server_gone()

        threading.Thread(target=read, name="ltxserve-wake", daemon=True).start()


def _die_with(server_pid: int) -> None:
    """Have the kernel kill this process when the server dies (Linux), so that `kill -9` of the server is a
    crash of both; elsewhere the closed wake pipe stops the worker after its job."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != server_pid:  # the server died before the signal was armed
        os._exit(1)


class ServerSide:
    """The server's end of one worker process's pipes."""

    def __init__(self) -> None:
        self._wake_read, self._wake_write = os.pipe()
        self._events_read, self._events_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    @property
    def child_fds(self) -> tuple[int, int]:
        return self._wake_read, self._events_write

    def after_spawn(self) -> None:
        """Close the child's ends here, so that its death reads as end-of-file."""
        os.close(self._wake_read)
        os.close(self._events_write)

    def wake(self) -> None:
        try:
            os.write(self._wake_write, WAKE)
        except BlockingIOError:
            pass  # the pipe is full of wake-ups the worker has not read yet: one more adds nothing
        except OSError:
            pass  # the worker has exited; the supervisor is already starting another

    def events(self) -> Iterator[WorkerEvent]:
        """The worker's events until it exits."""
        with os.fdopen(self._events_read, "r") as lines:
            for line in lines:
                try:
                    yield decode(line)
                except ValueError:
                    log.warning("unreadable line from the worker process", extra={"line": line[:200]})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._wake_write)
