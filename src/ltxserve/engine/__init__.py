"""Video generation: LTX-2's fast path from an Order to an MP4 file.

The names below load on first use: importing the package, or `ltxserve.engine.spec` (progress events and
the model grid's geometry: plain data), must not pull in PyTorch for processes that never generate.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine, EngineSettings, GenerationResult
    from .mux import EncodeSettings
    from .spec import Progress, ProgressFn
    from .speed import SpeedSettings

_WHERE = {
    "Engine": "engine",
    "EngineSettings": "engine",
    "GenerationResult": "engine",
    "EncodeSettings": "mux",
    "Progress": "spec",
    "ProgressFn": "spec",
    "SpeedSettings": "speed",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = [
    "EncodeSettings",
    "Engine",
    "EngineSettings",
    "GenerationResult",
    "Progress",
    "ProgressFn",
    "SpeedSettings",
]
