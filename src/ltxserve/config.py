"""All settings, from one place: `LTXSERVE_*` environment variables over a TOML file over defaults.

The TOML file is the one named by `LTXSERVE_CONFIG` (keys as below, without the prefix). Settings are
data only: the modules that use them build what they need from them. The README's table of them is made
from this class (`python -m ltxserve.settings_table`), so every field says what it is for.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .order.vocabulary import REFINE_MAX_PIXELS, RESOLUTIONS, Resolution
from .storage.urls import parse_s3_url

X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]


_PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "admin", "password", "test", "none"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LTXSERVE_", extra="forbid", frozen=True)

    config: Path | None = Field(None, description="TOML file with more settings")
    data_dir: Path = Field(
        Path.home() / ".ltxserve", description="Models (`models/`, the tiny model too), the SQLite database, results"
    )

    model: str = Field("tiny", description="'tiny' (built in, noise) or a directory of LTX-2 weights")
    device: str = Field("auto", description="auto (CUDA if present), cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights' precision; auto: bfloat16 on CUDA, float32 on CPU"
    )
    cpu_offload: bool = Field(False, description="Keep idle components in CPU memory (GPUs under ~48 GB)")

    decode_tile_frames: int = Field(80, gt=0, description="Video decode tile, in frames (multiple of 8)")
    decode_stride_frames: int = Field(56, gt=0, description="Step between decode tiles (multiple of 8)")
    vae_spatial_tiling: bool = Field(False, description="Decode in spatial tiles too (2k/4k on a GPU)")
    refine_max_pixels: int | None = Field(
        REFINE_MAX_PIXELS, gt=0, description="Outputs above this many pixels a frame refine at half size, then upsample"
    )
    overlap_encode: bool = Field(True, description="Encode the MP4 on a CPU thread while the next frames decode")
    attention_backend: str | None = Field(
        None, description="diffusers attention backend for the transformer (e.g. _native_cudnn on H100)"
    )
    fp8: bool = Field(False, description="FP8 matmuls in the transformer blocks (Hopper/Ada GPUs)")
    compile: bool = Field(False, description="torch.compile the transformer blocks (slow first request)")
    offload_text_encoder: bool = Field(
        False, description="Keep the text encoder in host memory except while it encodes a prompt (GPU only)"
    )

    video_crf: int = Field(18, ge=0, le=51, description="x264 constant rate factor: lower is better")
    video_preset: X264Preset = Field("veryfast", description="x264 preset: slower is smaller at the same quality")
    audio_bitrate: int = Field(192_000, ge=32_000, le=512_000, description="AAC bits per second")

    image_max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="Largest accepted input image")
    image_max_pixels: int = Field(50_000_000, gt=0, description="Largest decoded input image")
    fetch_timeout_s: float = Field(15.0, gt=0, description="Whole-download limit for image URLs")
    allow_loopback_urls: bool = Field(
        False, description="Let image URLs reach 127.0.0.1 (tests only; private ranges stay refused)"
    )

    host: str = Field("127.0.0.1", description="Address `ltxserve serve` listens on")
    port: int = Field(8000, ge=0, le=65535, description="Port `ltxserve serve` listens on (0: any free port)")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL (postgresql+psycopg://...); default: a SQLite file in data_dir"
    )
    results_dir: Path | None = Field(None, description="Where finished clips are kept; default: data_dir/results")
    storage_url: str | None = Field(
        None, description="s3://bucket[/prefix] to keep clips in S3-compatible storage; default: results_dir"
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint for non-AWS storage (MinIO, R2, ...)")
    s3_region: str | None = Field(None, description="S3 region (default us-east-1)")
    result_ttl_s: float = Field(86_400.0, gt=0, description="Seconds a finished clip is kept before deletion")
    record_ttl_s: float = Field(
        30 * 86_400.0, gt=0, description="Seconds a finished request's record and events are kept; the ledger stays"
    )
    public_url: str | None = Field(
        None, description="Base of the absolute URLs the API hands out (behind a proxy); default: as called"
    )
    trusted_hosts: list[str] = Field(
        [], description="Host names the API answers to (and builds URLs from); default: localhost, 127.0.0.1, ::1, "
        "`host` and public_url's; '*' for any"
    )
    max_body_bytes: int | None = Field(
        None, gt=0, description="Largest request body read; default: room for the largest image as a data URI"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="How long one webhook delivery may take")
    webhook_backoff_s: float = Field(2.0, gt=0, description="Wait before the first webhook retry; doubles after")
    webhook_backoff_max_s: float = Field(300.0, gt=0, description="Longest wait between webhook retries")
    webhook_retry_window_s: float = Field(3600.0, gt=0, description="How long a failing webhook is retried")
    admin_key: SecretStr | None = Field(None, description="Secret for /admin/...; the admin API is off without it")
    embedded_workers: int = Field(1, ge=0, le=1, description="Workers inside the server process (0: external only)")

    prices: dict[Resolution, Decimal] = Field(
        dict(zip(RESOLUTIONS, map(Decimal, ("0.05", "0.10", "0.20")), strict=True)),
        description="US dollars per second of output, audio included",
    )
    default_rpm: int = Field(60, gt=0, description="Generation requests a minute per key, unless the key says")
    default_concurrency: int = Field(2, gt=0, description="Queued or running generations per key, unless the key says")
    rate_limit_storage: str = Field(
        "memory://", description="Where per-minute counters live: memory:// (one process) or redis://host:port"
    )
    sync_timeout_s: float = Field(600.0, gt=0, description="How long POST /v1/... waits before answering 504")
    lease_s: float = Field(30.0, gt=0, description="A worker that misses this long of heartbeats loses its job")
    heartbeat_s: float = Field(5.0, gt=0, description="How often a worker renews its lease")
    max_attempts: int = Field(3, ge=1, description="Tries per job when workers die under it")
    worker_poll_s: float = Field(1.0, gt=0, description="How often an idle worker looks for jobs in the database")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Least severe log lines kept")

    @field_validator("admin_key")
    @classmethod
    def _real_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 16:
            raise ValueError("must be a real secret of 16 characters or more, e.g. `openssl rand -hex 24`")
        return value

    @field_validator("storage_url")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_s3_url(value)
        return value

    @field_validator("prices")
    @classmethod
    def _every_resolution_priced(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        missing = set(RESOLUTIONS) - set(value)
        if missing:
            raise ValueError(f"needs a price for {', '.join(sorted(missing))}")
        if any(price < 0 for price in value.values()):
            raise ValueError("prices cannot be negative")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        config_file = given.get("config") or env_settings().get("config")
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

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ltxserve.db'}"

    @property
    def body_limit(self) -> int:
        # Base64 grows the image by a third; a megabyte more is room for the rest of the JSON.
        return self.max_body_bytes or self.image_max_bytes * 4 // 3 + (1 << 20)

    @property
    def results(self) -> Path:
        return self.results_dir or self.data_dir / "results"
