"""What the engine needs to know about a set of weights beyond what diffusers' configs say: which LTX-2
release they are, and so which of the reference's settings apply.

The release is recognised from the configs that diffusers' `convert_ltx2_to_diffusers.py` writes:

| release | recognised by | audio/video cross-attention timestep | stage-1 sampler |
|---|---|---|---|
| 2.0 | `transformer/config.json` has `cross_attn_mod: false` | each modality's own | Euler |
| 2.3 | `cross_attn_mod: true` | the other modality's sigma | Euler |
| 2.5 | a Gemma 4 text encoder, or the transformer's `ff_bias: false` | the other's sigma | ancestral Euler |

An optional `ltxserve.json` in the weights directory overrides any of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# An optional file in the weights directory. Real LTX-2 weights need none: the configs say enough.
PROFILE_FILE = "ltxserve.json"

VERSIONS = ("2.0", "2.3", "2.5")


@dataclass(frozen=True)
class ModelProfile:
    name: str = "ltx-2"
    version: str = "2.3"
    # Fraction of the output size the model renders at; frames are scaled up to the output size.
    # 1.0 for real weights: they render at full size (rounded up to the model's grid) and are cropped.
    render_scale: float = 1.0
    # LTX-2.3 and later modulate the audio/video cross-attention with the other modality's sigma; 2.0 with
    # its own timestep (diffusers' `use_cross_timestep`).
    use_cross_timestep: bool = True
    # LTX-2.5 is sampled in stage 1 with ancestral Euler (eta 1): ltx-pipelines' DistilledPipeline,
    # `ANCESTRAL_SAMPLER_SINCE_VERSION = (2, 5)`.
    ancestral_stage1: bool = False

    @classmethod
    def for_version(cls, version: str, **fields: Any) -> ModelProfile:
        if version not in VERSIONS:
            raise ValueError(f"unknown LTX-2 version {version!r}; one of {', '.join(VERSIONS)}")
        defaults = {"use_cross_timestep": version != "2.0", "ancestral_stage1": version == "2.5"}
        return cls(version=version, **{**defaults, **fields})

    @classmethod
    def detect(cls, transformer: Mapping[str, Any], text_encoder_type: str | None, **fields: Any) -> ModelProfile:
        """The profile of weights with this transformer config and text encoder `model_type`."""
        if (text_encoder_type or "").startswith("gemma4") or transformer.get("ff_bias", True) is False:
            version = "2.5"
        elif transformer.get("cross_attn_mod", False):
            version = "2.3"
        else:
            version = "2.0"
        return cls.for_version(version, **fields)

    @classmethod
    def read(cls, directory: Path) -> ModelProfile:
        """The profile of a weights directory in diffusers layout, with `ltxserve.json` applied over it."""
        overrides: dict[str, Any] = {}
        path = directory / PROFILE_FILE
        if path.exists():
            overrides = json.loads(path.read_text())
            unknown = set(overrides) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        transformer = _config(directory / "transformer" / "config.json")
        text_encoder = _config(directory / "text_encoder" / "config.json").get("model_type")
        version = overrides.pop("version", None)
        name = overrides.pop("name", directory.name)
        if version is not None:
            profile = cls.for_version(version, name=name)
        else:
            profile = cls.detect(transformer, text_encoder, name=name)
        return replace(profile, **overrides)


def _config(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}
