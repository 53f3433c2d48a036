"""Building a worker from settings, and running one inside the server process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..config import Settings
from ..engine import Engine
from ..jobs import JobStore
from .worker import Worker, WorkerConfig

log = logging.getLogger(__name__)


def load_engine(settings: Settings) -> Engine:
    return Engine.load(
        settings.model,
        cache_dir=settings.models_dir,
        device=settings.device,
        dtype=settings.dtype,
        cpu_offload=settings.cpu_offload,
        settings=settings.engine,
    )


def build_worker(
    settings: Settings, store: JobStore, engine: Engine, on_generated: Callable[[float], None] | None = None
) -> Worker:
    config = WorkerConfig(
        work_dir=settings.data_dir / "work",
        heartbeat_s=settings.heartbeat_s,
        poll_s=settings.worker_poll_s,
        image_max_pixels=settings.image_max_pixels,
    )
    return Worker(
        store, engine, settings.result_storage(), config, model_name=settings.model, on_generated=on_generated
    )


class EmbeddedWorker:
    """A worker on a thread of the server: loads the model in the background, so the server answers
    /healthz at once and /readyz once the model is in."""

    def __init__(self, settings: Settings, store: JobStore, on_generated: Callable[[float], None] | None = None):
        self._settings = settings
        self._store = store
        self._on_generated = on_generated
        self._stop = threading.Event()
        self._worker: Worker | None = None
        self._thread = threading.Thread(target=self._main, name="ltxserve-worker", daemon=True)
        self.load_error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            engine = load_engine(self._settings)
        except BaseException as exc:
            self.load_error = exc
            log.exception("the embedded worker could not load the model")
            return
        self._worker = build_worker(self._settings, self._store, engine, self._on_generated)
        if not self._stop.is_set():
            self._worker.run(self._stop)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.stop_waiting()
        self._thread.join(timeout)
