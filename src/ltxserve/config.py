"""All settings, from one place: `LTXSERVE_*` environment variables over a TOML file over defaults.

The TOML file is the one named by `LTXSERVE_CONFIG` (keys as below, without the prefix).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .engine import EncodeSettings, EngineSettings

X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTXSERVE_", extra="forbid", frozen=True)

    config: Path | None = Field(None, description="TOML file with more settings")
    data_dir: Path = Field(Path.home() / ".ltxserve", description="Models cache and, later, results")

    model: str = Field("tiny", description="'tiny' (built in, noise) or a directory of LTX-2 weights")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    cpu_offload: bool = Field(False, description="Keep idle components in CPU memory (small GPUs)")

    decode_tile_frames: int = Field(64, gt=0, description="Video decode tile, in frames (multiple of 8)")
    decode_stride_frames: int = Field(56, gt=0, description="Step between decode tiles (multiple of 8)")
    vae_spatial_tiling: bool = Field(False, description="Decode in spatial tiles too (2k/4k on a GPU)")

    video_crf: int = Field(18, ge=0, le=51, description="x264 constant rate factor: lower is better")
    video_preset: X264Preset = "veryfast"
    audio_bitrate: int = Field(192_000, ge=32_000, le=512_000)

    image_max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted input image")
    image_max_pixels: int = Field(50_000_000, gt=0, description="Largest decoded input image")
    fetch_timeout_s: float = Field(15.0, gt=0, description="Whole-download limit for image URLs")
    allow_loopback_urls: bool = Field(
        False, description="Let image URLs reach 127.0.0.1 (tests only; private ranges stay refused)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = init_settings.init_kwargs.get("config") or env_settings().get("config")
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"LTXSERVE_CONFIG names {path}, which is not a file")
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @cached_property
    def engine(self) -> EngineSettings:
        return EngineSettings(
            decode_tile_frames=self.decode_tile_frames,
            decode_stride_frames=self.decode_stride_frames,
            vae_spatial_tiling=self.vae_spatial_tiling,
            encode=EncodeSettings(crf=self.video_crf, preset=self.video_preset, audio_bitrate=self.audio_bitrate),
        )
