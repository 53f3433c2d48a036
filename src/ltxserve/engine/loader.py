"""One loader for both model sources: the built-in tiny model and a directory of real LTX-2 weights.

The directory is in diffusers layout (`model_index.json`, `transformer/`, `vae/`, `audio_vae/`,
`vocoder/`, `connectors/`, `text_encoder/`, `tokenizer/`, `scheduler/`) plus a `latent_upsampler/`
folder holding the x2 spatial upsampler. The tiny model is written in that same layout on first use.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .profile import ModelProfile
from .tiny import ensure_tiny_model

TINY = "tiny"

BWE_VOCODER = "LTX2VocoderWithBWE"

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelNotFound(FileNotFoundError):
    pass


@dataclass
class LoadedModel:
    """The pipelines of the fast path, sharing one set of modules."""

    text_to_video: Any  # diffusers.LTX2Pipeline
    image_to_video: Any  # diffusers.LTX2ImageToVideoPipeline
    upsample: Any  # diffusers.LTX2LatentUpsamplePipeline
    profile: ModelProfile
    source: Path
    device: torch.device
    dtype: torch.dtype
    # speed.PinnedWeights when the text encoder lives in host memory between prompts.
    text_encoder_home: Any = None

    def text_encoder_on_device(self) -> contextlib.AbstractContextManager:
        return self.text_encoder_home.on_device() if self.text_encoder_home else contextlib.nullcontext()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of auto, {', '.join(_DTYPES)}") from None


def resolve_source(model: str, cache_dir: Path) -> Path:
    if model == TINY:
        return ensure_tiny_model(cache_dir)
    path = Path(model).expanduser()
    if not (path / "model_index.json").is_file():
        raise ModelNotFound(
            f"{path} is not an LTX-2 weights directory in diffusers layout (no model_index.json); "
            f"pass '{TINY}' or a directory holding the weights"
        )
    if not (path / "latent_upsampler" / "config.json").is_file():
        raise ModelNotFound(f"{path} has no latent_upsampler/ folder: the fast path needs the x2 spatial upsampler")
    return path


def _vocoder_class(source: Path) -> str | None:
    config = source / "vocoder" / "config.json"
    return json.loads(config.read_text()).get("_class_name") if config.is_file() else None


def load_model(
    model: str = TINY,
    *,
    cache_dir: Path,
    device: str = "auto",
    dtype: str = "auto",
    cpu_offload: bool = False,
) -> LoadedModel:
    from diffusers import LTX2Pipeline
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

    source = resolve_source(model, cache_dir)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)

    # The 48 kHz vocoder with bandwidth extension is read in float32 whatever the model's dtype (see
    # assemble_model); reading it at full precision, not widening bf16 weights, keeps every bit of them.
    dtypes = {"default": torch_dtype}
    if _vocoder_class(source) == BWE_VOCODER:
        dtypes["vocoder"] = torch.float32
    t2v = LTX2Pipeline.from_pretrained(source, dtype=dtypes, local_files_only=True)
    upsampler = LTX2LatentUpsamplerModel.from_pretrained(
        source / "latent_upsampler", dtype=torch_dtype, local_files_only=True
    )
    return assemble_model(
        t2v, upsampler, ModelProfile.read(source), source=source, device=torch_device, cpu_offload=cpu_offload
    )


def assemble_model(
    t2v: Any,
    upsampler: Any,
    profile: ModelProfile,
    *,
    source: Path,
    device: torch.device,
    cpu_offload: bool = False,
) -> LoadedModel:
    """The fast path's pipelines around one set of modules, however they were made: read from a weights
    directory, or built in memory (bench/gpu_pipeline.py builds full-size ones with random weights)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2ImageToVideoPipeline, LTX2LatentUpsamplePipeline

    # Lightricks' reference runs LTX-2.3's vocoder with bandwidth extension in float32 ("bfloat16 arithmetic
    # causes 40-90% spectral metric degradation", ltx-core `VocoderWithBWE.forward`); 2.0's plain vocoder
    # runs at the model's dtype there too. ~130 M parameters: 0.5 GB in float32.
    if type(t2v.vocoder).__name__ == BWE_VOCODER:
        t2v.vocoder.to(torch.float32)
    # The distilled sigmas are used exactly as trained: no resolution-dependent shift on top of them.
    t2v.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        t2v.scheduler.config, use_dynamic_shifting=False, shift=1.0, shift_terminal=None
    )
    if cpu_offload:
        t2v.enable_model_cpu_offload(device=device)
    else:
        t2v.to(device)
    upsampler.to(device)
    t2v.set_progress_bar_config(disable=True)

    # The same modules under a second pipeline. Not `from_pipe`: it casts every shared module to its `dtype`
    # argument (float32 unless told), which would widen a bf16 model, or narrow the float32 vocoder.
    i2v = LTX2ImageToVideoPipeline(**t2v.components)
    i2v.set_progress_bar_config(disable=True)
    upsample = LTX2LatentUpsamplePipeline(vae=t2v.vae, latent_upsampler=upsampler)
    upsample.set_progress_bar_config(disable=True)
    return LoadedModel(
        text_to_video=t2v,
        image_to_video=i2v,
        upsample=upsample,
        profile=profile,
        source=source,
        device=device,
        dtype=t2v.transformer.dtype,
    )
