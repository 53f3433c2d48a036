"""The engine: a RenderSpec in, an MP4 file out. It knows nothing of HTTP, jobs or billing."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .decode import configure_video_tiles, decode_audio, iter_video_chunks, to_uint8_frames
from .loader import LoadedModel, load_model
from .mux import EncodeSettings, Mp4Writer
from .sampling import denoise
from .spec import Geometry, Progress, ProgressFn, RenderSpec


@dataclass(frozen=True)
class EngineSettings:
    # Temporal decode tiles in pixel frames: longer tiles decode less overlap twice but hold more frames.
    decode_tile_frames: int = 64
    decode_stride_frames: int = 56
    # Spatial VAE tiling bounds decoder memory at 2k/4k on a GPU; pointless for the tiny model.
    vae_spatial_tiling: bool = False
    encode: EncodeSettings = field(default_factory=EncodeSettings)


@dataclass(frozen=True)
class GenerationResult:
    seed: int
    width: int
    height: int
    fps: int
    num_frames: int
    audio_sample_rate: int  # 0 when the clip has no audio track
    timings: dict[str, float]  # seconds per stage

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


class _StageClock:
    """Turns progress events into seconds per stage, and forwards them to the caller's callback."""

    def __init__(self, forward: ProgressFn | None) -> None:
        self.timings: dict[str, float] = {}
        self._forward = forward
        self._stage: str | None = None
        self._since = 0.0

    def __call__(self, event: Progress) -> None:
        now = time.perf_counter()
        if event.stage != self._stage:
            self.stop(now)
            self._stage, self._since = event.stage, now
        if self._forward is not None:
            self._forward(event)

    def stop(self, now: float | None = None) -> None:
        if self._stage is not None:
            now = time.perf_counter() if now is None else now
            self.timings[self._stage] = self.timings.get(self._stage, 0.0) + now - self._since
            self._stage = None

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


class Engine:
    def __init__(self, model: LoadedModel, settings: EngineSettings | None = None) -> None:
        self.model = model
        self.settings = settings or EngineSettings()
        configure_video_tiles(
            model.text_to_video.vae,
            self.settings.decode_tile_frames,
            self.settings.decode_stride_frames,
            self.settings.vae_spatial_tiling,
        )
        # One generation at a time: a second would only contend for the same accelerator.
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: str = "tiny",
        *,
        cache_dir: Path,
        device: str = "auto",
        dtype: str = "auto",
        cpu_offload: bool = False,
        settings: EngineSettings | None = None,
    ) -> Engine:
        loaded = load_model(model, cache_dir=cache_dir, device=device, dtype=dtype, cpu_offload=cpu_offload)
        return cls(loaded, settings)

    @property
    def audio_sample_rate(self) -> int:
        return int(self.model.text_to_video.vocoder.config.output_sampling_rate)

    def generate(self, spec: RenderSpec, output: str | Path, progress: ProgressFn | None = None) -> GenerationResult:
        """Render `spec` into an MP4 at `output`. The file appears only once it is complete."""
        output = Path(output)
        partial = output.with_name(f".{output.name}.partial")
        try:
            with self._lock:
                result = self._generate(spec, partial, progress)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return result

    @torch.inference_mode()
    def _generate(self, spec: RenderSpec, output: Path, progress: ProgressFn | None) -> GenerationResult:
        geometry = Geometry.plan(spec, self.model.profile.render_scale)
        clock = _StageClock(progress)
        latents = denoise(self.model, spec, geometry, clock)

        pipe = self.model.text_to_video
        waveform = None
        if spec.audio:
            clock(Progress("decode_audio", 0, 1))
            num_samples = spec.num_frames * self.audio_sample_rate // spec.fps
            waveform = decode_audio(pipe, latents.audio, num_samples)
            clock(Progress("decode_audio", 1, 1))
        clock.stop()

        vae = pipe.vae
        temb = torch.zeros(1, device=self.model.device) if vae.config.timestep_conditioning else None
        video_latents = latents.video.to(vae.dtype)
        del latents
        writer = Mp4Writer(
            output,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            crop_box=geometry.crop_box,
            audio=waveform,
            sample_rate=self.audio_sample_rate,
            settings=self.settings.encode,
        )
        with writer:
            decode_s = encode_s = 0.0
            started = time.perf_counter()
            for chunk in iter_video_chunks(vae, video_latents, temb):
                frames = to_uint8_frames(chunk)[: spec.num_frames - writer.frames_written]
                encode_started = time.perf_counter()
                decode_s += encode_started - started
                writer.write(frames)
                started = time.perf_counter()
                encode_s += started - encode_started
                if progress is not None:
                    progress(Progress("decode_video", writer.frames_written, spec.num_frames))
                if writer.frames_written >= spec.num_frames:
                    break
            close_started = time.perf_counter()
        encode_s += time.perf_counter() - close_started
        clock.add("decode_video", decode_s)
        clock.add("encode", encode_s)

        if writer.frames_written != spec.num_frames:
            raise RuntimeError(f"decoded {writer.frames_written} frames, expected {spec.num_frames}")
        return GenerationResult(
            seed=spec.seed,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
            num_frames=spec.num_frames,
            audio_sample_rate=self.audio_sample_rate if spec.audio else 0,
            timings=clock.timings,
        )
