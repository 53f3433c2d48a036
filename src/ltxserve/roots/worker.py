"""The workers' composition root: the engine and a worker from settings, and the worker process
(`ltxserve worker`, plain or supervised by a server) around them. The Ray replica (fleet/replica.py) builds
its worker with the same functions."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from ..config import Settings
from ..engine import EncodeSettings, Engine, EngineSettings, SpeedSettings
from ..jobs import JobStore
from ..logs import configure_logging, quiet_libraries
from ..storage import storage_for
from ..workers import Worker, WorkerConfig, WorkerIdentity
from ..workers.channel import LOAD_FAILED, WorkerSide
from ..workers.events import Generated, JobChanged, LoadFailed, Loading, Problem, Ready
from ..workers.metrics import WorkerMetrics
from .store import open_store


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        decode_tile_frames=settings.decode_tile_frames,
        decode_stride_frames=settings.decode_stride_frames,
        vae_spatial_tiling=settings.vae_spatial_tiling,
        overlap_encode=settings.overlap_encode,
        refine_max_pixels=settings.refine_max_pixels,
        speed=SpeedSettings(
            attention_backend=settings.attention_backend,
            fp8=settings.fp8,
            compile=settings.compile,
            offload_text_encoder=settings.offload_text_encoder,
        ),
        encode=EncodeSettings(
            crf=settings.video_crf, preset=settings.video_preset, audio_bitrate=settings.audio_bitrate
        ),
    )


def load_engine(settings: Settings) -> Engine:
    quiet_libraries()
    return Engine.load(
        settings.model,
        cache_dir=settings.models_dir,
        device=settings.device,
        dtype=settings.dtype,
        cpu_offload=settings.cpu_offload,
        settings=engine_settings(settings),
    )


def build_worker(
    settings: Settings,
    store: JobStore,
    engine: Engine,
    on_generated: Callable[[float], None] | None = None,
    on_problem: Callable[[str | None], None] | None = None,
    identity: WorkerIdentity | None = None,
    may_claim: Callable[[], bool] = lambda: True,
) -> Worker:
    config = WorkerConfig(
        work_dir=settings.data_dir / "work",
        heartbeat_s=settings.heartbeat_s,
        poll_s=settings.worker_poll_s,
    )
    return Worker(
        store,
        engine,
        storage_for(settings),
        config,
        model_name=settings.model,
        on_generated=on_generated,
        on_problem=on_problem,
        identity=identity,
        may_claim=may_claim,
    )


def run_worker_process(
    settings: Settings, link: WorkerSide | None = None, metrics: WorkerMetrics | None = None
) -> None:
    """Serve jobs until SIGTERM or SIGINT (or, supervised, until the server is gone): the job in hand is
    finished first; a second signal is the default, immediate one. `link`: the pipes to the server that
    supervises this process (it then hears of every event here; a model that does not load exits with
    LOAD_FAILED)."""
    configure_logging(settings.log_level)
    metrics = metrics or WorkerMetrics()
    store = open_store(settings)
    if link is not None:
        link.send(Loading())
    try:
        engine = load_engine(settings)
    except Exception as exc:
        if link is None:
            raise
        link.send(LoadFailed(f"{exc.__class__.__name__}: {exc}"))
        raise SystemExit(LOAD_FAILED) from None

    def generated(seconds: float) -> None:
        metrics.generation_seconds.observe(seconds)
        if link is not None:
            link.send(Generated(seconds))

    def problem(text: str | None) -> None:
        if link is not None:
            link.send(Problem(text))

    running = build_worker(settings, store, engine, on_generated=generated, on_problem=problem)
    metrics.watch(running)
    stop = threading.Event()

    def request_stop(signum=None, _frame=None) -> None:
        stop.set()
        running.wake()
        if signum is not None:
            signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if link is not None:
        store.notices.subscribe(lambda job_id, status: link.send(JobChanged(job_id, status)))
        link.listen(on_wake=running.wake, on_server_gone=request_stop)
        link.send(Ready(running.id))
    running.run(stop)
    store.db.dispose()
