"""A worker: claims jobs from the job store under a lease, runs them on the engine, stores the result.

The same class runs inside the server (embedded default), in `ltxserve worker`, or on another machine
pointed at the same database and storage. It talks to nothing but the job store, the engine and storage.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine import Engine, Progress
from ..errors import ImageRejected
from ..jobs import ClaimedJob, JobStatus, JobStore
from ..request import GenerationRequest, decode_image
from ..storage import ResultStorage

log = logging.getLogger(__name__)


class _Revoked(Exception):
    """The job stopped being ours mid-generation: canceled, or our lease lapsed."""


@dataclass(frozen=True)
class WorkerConfig:
    work_dir: Path  # scratch space for clips being written
    heartbeat_s: float = 5.0
    poll_s: float = 1.0
    image_max_pixels: int = 50_000_000


class Worker:
    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        storage: ResultStorage,
        config: WorkerConfig,
        *,
        model_name: str,
        on_generated: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.storage = storage
        self.config = config
        self.model_name = model_name
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._on_generated = on_generated
        self._wake = threading.Event()

    def _on_job_event(self, job_id: str, status: JobStatus) -> None:
        if status is JobStatus.QUEUED:
            self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Serve jobs until `stop` is set. Registered as live only while this loop runs."""
        self.store.subscribe(self._on_job_event)
        self.store.listen_for_jobs(self._wake.set, stop)
        self.store.register_worker(self.id, host=socket.gethostname(), pid=os.getpid(), model=self.model_name)
        log.info("worker ready", extra={"worker": self.id, "model": self.model_name})
        last_beat = time.monotonic()
        try:
            while not stop.is_set():
                self._wake.clear()
                self.store.reap()
                claimed = self.store.claim(self.id)
                if claimed is not None:
                    self.run_job(claimed)
                    continue
                if time.monotonic() - last_beat >= self.config.heartbeat_s:
                    self.store.worker_heartbeat(self.id)
                    last_beat = time.monotonic()
                self._wake.wait(self.config.poll_s)
        finally:
            self.store.unsubscribe(self._on_job_event)
            self.store.unregister_worker(self.id)

    def stop_waiting(self) -> None:
        self._wake.set()

    def run_job(self, claimed: ClaimedJob) -> None:
        job = claimed.job
        context = {"request_id": job.id, "worker": self.id, "attempt": job.attempts}
        log.info("job started", extra=context)
        output = self.config.work_dir / f"{job.id}.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
        beating = threading.Event()
        heart = threading.Thread(target=self._beat, args=(job.id, beating), name=f"heartbeat-{job.id}", daemon=True)
        heart.start()
        started = time.perf_counter()
        try:
            request = GenerationRequest.model_validate(job.request)
            image = decode_image(claimed.image, self.config.image_max_pixels) if claimed.image else None

            def progress(event: Progress) -> None:
                if not self.store.report_progress(job.id, self.id, event.stage, event.step, event.total, event.percent):
                    raise _Revoked

            result = self.engine.generate(request.to_spec(image), output, progress=progress)
            key = f"{job.id}.mp4"
            self.storage.put(output, key)
            record = {
                "seed": result.seed,
                "width": result.width,
                "height": result.height,
                "fps": result.fps,
                "num_frames": result.num_frames,
                "audio_sample_rate": result.audio_sample_rate,
                "timings": {stage: round(seconds, 4) for stage, seconds in result.timings.items()},
            }
            if self.store.complete(job.id, self.id, key, record):
                seconds = time.perf_counter() - started
                if self._on_generated is not None:
                    self._on_generated(seconds)
                log.info("job completed", extra={**context, "seconds": round(seconds, 3)})
            else:
                self.storage.delete(key)
                log.info("job finished after it was taken away; result dropped", extra=context)
        except _Revoked:
            log.info("job stopped: canceled or lease lost", extra=context)
        except ImageRejected as exc:
            self.store.fail(job.id, self.id, exc.code, exc.message)
        except Exception:
            log.exception("job failed", extra=context)
            self.store.fail(
                job.id,
                self.id,
                "generation_failed",
                f"The generation failed on our side. You were not charged. Quote request id {job.id} if you "
                "report it.",
            )
        finally:
            beating.set()
            heart.join()
            output.unlink(missing_ok=True)

    def _beat(self, job_id: str, done: threading.Event) -> None:
        # Progress reports renew the lease too, but one denoising step of a large clip can outlast it.
        while not done.wait(self.config.heartbeat_s):
            try:
                self.store.heartbeat(job_id, self.id)
                self.store.worker_heartbeat(self.id)
            except Exception:
                log.exception("heartbeat failed", extra={"request_id": job_id, "worker": self.id})
