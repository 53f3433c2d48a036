"""The engine: an Order (and the images it names) in, an MP4 file out. It knows nothing of HTTP, jobs or
billing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..order import Order
from ..order.vocabulary import REFINE_MAX_PIXELS, Stage
from .decode import TemporalTiles, decode_audio, iter_video_chunks, to_uint8_frames
from .loader import LoadedModel, load_model
from .mux import EncodeSettings, Mp4Writer
from .sampling import denoise
from .spec import Geometry, Progress, ProgressFn
from .speed import SpeedSettings, apply_speedups


@dataclass(frozen=True)
class EngineSettings:
    # Temporal decode tiles in pixel frames (decode.TemporalTiles): the reference's 80-frame tiles, 24 shared.
    decode_tile_frames: int = 80
    decode_stride_frames: int = 56
    # Spatial VAE tiling bounds decoder memory at 2k/4k on a GPU; pointless for the tiny model.
    vae_spatial_tiling: bool = False
    # For outputs of more pixels a frame, stage 2 refines at half size and a second x2 latent upsample
    # makes full size (4k: refine at 1920x1088, not 3840x2176). None: always refine at full size.
    refine_max_pixels: int | None = REFINE_MAX_PIXELS
    # Encode each decoded chunk on a CPU thread while the next chunk decodes.
    overlap_encode: bool = True
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    speed: SpeedSettings = field(default_factory=SpeedSettings)


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

    def to_json(self) -> dict:
        """What a job's record keeps of it."""
        return {**asdict(self), "timings": {str(stage): round(seconds, 4) for stage, seconds in self.timings.items()}}


class _StageClock:
    """Turns progress events into seconds per stage, and forwards them to the caller's callback.

    `sync` waits for the accelerator at each stage boundary: its work is queued asynchronously, and
    without the wait one stage's time would be booked to the next.
    """

    def __init__(self, forward: ProgressFn | None, sync: Callable[[], None]) -> None:
        self.timings: dict[str, float] = {}
        self._forward = forward
        self._sync = sync
        self._stage: str | None = None
        self._since = 0.0

    def __call__(self, event: Progress) -> None:
        if event.stage != self._stage:
            self.stop()
            self._stage, self._since = event.stage, time.perf_counter()
        if self._forward is not None:
            self._forward(event)

    def stop(self) -> None:
        if self._stage is not None:
            self._sync()
            now = time.perf_counter()
            self.timings[self._stage] = self.timings.get(self._stage, 0.0) + now - self._since
            self._stage = None

    def add(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


class Engine:
    def __init__(self, model: LoadedModel, settings: EngineSettings | None = None) -> None:
        self.model = model
        self.settings = settings or EngineSettings()
        vae = model.text_to_video.vae
        self.tiles = TemporalTiles(self.settings.decode_tile_frames, self.settings.decode_stride_frames)
        self.tiles.latents(vae.temporal_compression_ratio)  # refuse bad tiles now, not at the first decode
        vae.use_tiling = self.settings.vae_spatial_tiling
        apply_speedups(model, self.settings.speed)
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

    def generate(
        self,
        order: Order,
        output: str | Path,
        progress: ProgressFn | None = None,
        images: Mapping[str, Image.Image] | None = None,
    ) -> GenerationResult:
        """Make `order` into an MP4 at `output`; `images` holds the pixels of the images the order names, by
        name. The file appears only once it is complete."""
        output = Path(output)
        partial = output.with_name(f".{output.name}.partial")
        first = order.first_frame
        image = (images or {})[first.name] if first is not None else None
        try:
            with self._lock:
                result = self._generate(order, image, partial, progress)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return result

    @torch.inference_mode()
    def _generate(
        self, order: Order, image: Image.Image | None, output: Path, progress: ProgressFn | None
    ) -> GenerationResult:
        geometry = Geometry.plan(order, self.model.profile.render_scale, self.settings.refine_max_pixels)
        device = self.model.device
        clock = _StageClock(progress, lambda: torch.cuda.synchronize(device) if device.type == "cuda" else None)
        latents = denoise(self.model, order, geometry, image, clock)

        pipe = self.model.text_to_video
        waveform = None
        if order.audio:
            clock(Progress(Stage.DECODE_AUDIO, 0, 1))
            num_samples = order.num_frames * self.audio_sample_rate // order.fps
            waveform = decode_audio(pipe, latents.audio, num_samples)
            clock(Progress(Stage.DECODE_AUDIO, 1, 1))
        clock.stop()

        vae = pipe.vae
        temb = torch.zeros(1, device=self.model.device) if vae.config.timestep_conditioning else None
        video_latents = latents.video.to(vae.dtype)
        del latents
        writer = Mp4Writer(
            output,
            width=order.width,
            height=order.height,
            fps=order.fps,
            crop_box=geometry.crop_box,
            audio=waveform,
            sample_rate=self.audio_sample_rate,
            settings=self.settings.encode,
        )
        # `encode` is the time the decoder waited for the encoder: all of the encoding when they take
        # turns, only what decoding did not hide when they overlap.
        with writer, ThreadPoolExecutor(1, thread_name_prefix="mp4-encode") as encoder:
            decode_s = encode_s = 0.0
            decoded = 0
            pending = None
            started = time.perf_counter()
            for chunk in iter_video_chunks(vae, video_latents, self.tiles, temb):
                frames = to_uint8_frames(chunk)[: order.num_frames - decoded]
                decoded += len(frames)
                waiting = time.perf_counter()
                decode_s += waiting - started
                if pending is not None:
                    pending.result()  # one chunk in the encoder at a time bounds the frames held
                pending = encoder.submit(writer.write, frames)
                if not self.settings.overlap_encode:
                    pending.result()
                started = time.perf_counter()
                encode_s += started - waiting
                if progress is not None:
                    progress(Progress(Stage.DECODE_VIDEO, decoded, order.num_frames))
                if decoded >= order.num_frames:
                    break
            waiting = time.perf_counter()
            if pending is not None:
                pending.result()
        encode_s += time.perf_counter() - waiting
        clock.add(Stage.DECODE_VIDEO, decode_s)
        clock.add("encode", encode_s)

        if writer.frames_written != order.num_frames:
            raise RuntimeError(f"decoded {writer.frames_written} frames, expected {order.num_frames}")
        return GenerationResult(
            seed=order.seed,
            width=order.width,
            height=order.height,
            fps=order.fps,
            num_frames=order.num_frames,
            audio_sample_rate=self.audio_sample_rate if order.audio else 0,
            timings=clock.timings,
        )
