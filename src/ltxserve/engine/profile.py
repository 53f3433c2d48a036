"""What the engine needs to know about a weights directory beyond what diffusers' configs say."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# An optional file in the weights directory. Real LTX-2 weights need none: the defaults fit them.
PROFILE_FILE = "ltxserve.json"


@dataclass(frozen=True)
class ModelProfile:
    name: str = "ltx-2"
    # Fraction of the output size the model renders at; frames are scaled up to the output size.
    # 1.0 for real weights: they render at full size (rounded up to the model's grid) and are cropped.
    render_scale: float = 1.0
    # LTX-2.3 and later modulate cross-attention with the other modality's sigma; LTX-2.0 did not.
    use_cross_timestep: bool = True

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, directory: Path) -> ModelProfile:
        path = directory / PROFILE_FILE
        if not path.exists():
            return cls(name=directory.name)
        data = json.loads(path.read_text())
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**data)
