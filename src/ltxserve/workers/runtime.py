"""Building a worker and its engine from settings."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from ..engine import EncodeSettings, Engine, EngineSettings, SpeedSettings
from ..jobs import JobStore
from ..logs import quiet_libraries
from ..storage import storage_for
from .worker import Worker, WorkerConfig, WorkerIdentity


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
        image_max_pixels=settings.image_max_pixels,
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
