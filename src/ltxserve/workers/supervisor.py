"""The embedded worker of `ltxserve serve`, as a child process the server supervises (as cog runs its
predictor): a crash in PyTorch, FFmpeg or a GPU driver ends that process, not the API, and the server
starts another after a backoff. The API process itself never imports PyTorch.

The child is `ltxserve worker --supervised`, given the server's settings through its environment. It is
killed with the server (the kernel's parent-death signal), so `kill -9` of the server is a crash of both,
which the job store's leases already recover from.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..jobs import JobStatus, JobStore
from .channel import LOAD_FAILED, ServerSide
from .events import Generated, JobChanged, LoadFailed, Loading, Phase, Problem, Ready, WorkerEvent

log = logging.getLogger(__name__)

# Settings the worker does not need, or must not have: the admin secret, and where the server listens.
_NOT_FOR_THE_WORKER = {"config", "admin_key", "host", "port", "embedded_workers"}


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a worker process that sees exactly the server's settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LTXSERVE_")}
    for name, value in settings.model_dump(mode="json", exclude=_NOT_FOR_THE_WORKER).items():
        if value is not None:
            env[f"LTXSERVE_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@dataclass
class WorkerState:
    """What /readyz says of the embedded worker."""

    phase: Phase = Phase.STARTING
    pid: int | None = None
    restarts: int = 0
    error: str | None = None  # why it last failed to load or exited, or the problem it keeps retrying
    load_failed: bool = False  # its last start could not load the model: retrying may never help

    def to_json(self) -> dict:
        return {"phase": str(self.phase), "pid": self.pid, "restarts": self.restarts, "error": self.error}

    @property
    def on_its_way(self) -> bool:
        """Not ready yet, but expected to be: starting, loading its model, or restarting after a crash."""
        return self.phase in (Phase.STARTING, Phase.LOADING, Phase.RESTARTING) and not self.load_failed


class WorkerSupervisor:
    BACKOFF_S = 1.0
    BACKOFF_MAX_S = 60.0
    HEALTHY_AFTER_S = 60.0  # a process that ran this long resets the backoff

    def __init__(self, settings: Settings, store: JobStore, on_generated: Callable[[float], None]) -> None:
        self._settings = settings
        self._store = store
        self._on_generated = on_generated
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._pipes: ServerSide | None = None
        self._thread = threading.Thread(target=self._supervise, name="ltxserve-supervisor", daemon=True)
        self.state = WorkerState()

    def start(self) -> None:
        self._store.notices.subscribe(self._on_job)
        self._thread.start()

    @property
    def on_its_way(self) -> bool:
        return self.state.on_its_way

    def report(self) -> dict:
        return self.state.to_json()

    def _on_job(self, job_id: str, status: JobStatus) -> None:
        if status is JobStatus.QUEUED:
            with self._lock:
                if self._pipes is not None:
                    self._pipes.wake()

    def _spawn(self) -> tuple[subprocess.Popen, ServerSide]:
        pipes = ServerSide()
        wake_fd, events_fd = pipes.child_fds
        process = subprocess.Popen(
            [sys.executable, "-m", "ltxserve", "worker", "--supervised", f"{os.getpid()},{wake_fd},{events_fd}"],
            env=worker_environment(self._settings),
            pass_fds=(wake_fd, events_fd),
            # Not in the terminal's process group: Ctrl-C stops the server, which then stops its worker.
            start_new_session=True,
        )
        pipes.after_spawn()
        with self._lock:
            self._process, self._pipes = process, pipes
        return process, pipes

    def _supervise(self) -> None:
        backoff = self.BACKOFF_S
        while not self._stop.is_set():
            started = time.monotonic()
            process, pipes = self._spawn()
            self.state.pid, self.state.phase = process.pid, Phase.STARTING
            log.info("worker process started", extra={"pid": process.pid})
            for event in pipes.events():
                self._handle(event)
            code = process.wait()
            with self._lock:
                pipes.close()
                self._process = self._pipes = None
            if self._stop.is_set():
                break
            if time.monotonic() - started >= self.HEALTHY_AFTER_S:
                backoff = self.BACKOFF_S
            self.state.restarts += 1
            self.state.phase = Phase.RESTARTING
            if code != LOAD_FAILED:  # else the worker said why itself
                self.state.error = f"the worker process exited with code {code}"
            log.error("worker process exited; starting another", extra={"pid": process.pid, "code": code,
                                                                        "retry_in_s": backoff})
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.BACKOFF_MAX_S)
        self.state.phase = Phase.STOPPED

    def _handle(self, event: WorkerEvent) -> None:
        match event:
            case JobChanged(id=job_id, status=status):
                # The worker's transitions, told to this process's waiters and streams at once.
                self._store.notices.notify(job_id, status)
            case Generated(seconds=seconds):
                self._on_generated(seconds)
            case Loading():
                self.state.phase = Phase.LOADING
            case Ready():
                self.state.phase, self.state.error, self.state.load_failed = Phase.READY, None, False
            case LoadFailed(error=error):
                self.state.error = f"the model failed to load: {error}"
                self.state.load_failed = True
            case Problem(error=error):
                self.state.error = error

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let the worker finish its job within `timeout_s`, then kill it (its lease returns the job)."""
        self._stop.set()
        self._store.notices.unsubscribe(self._on_job)
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("worker process did not stop in time; killed", extra={"pid": process.pid})
                process.kill()
                process.wait()
        self._thread.join(timeout_s)
