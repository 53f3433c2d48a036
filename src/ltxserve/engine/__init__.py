"""Video generation: LTX-2's fast path from a RenderSpec to an MP4 file.

The names below load on first use: `ltxserve.engine.spec` (what a request becomes) is plain data, and
importing it must not pull in PyTorch for processes that never generate (the API, the key commands).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine, EngineSettings, GenerationResult
    from .mux import EncodeSettings
    from .spec import Progress, ProgressFn, RenderSpec
    from .speed import SpeedSettings

_WHERE = {
    "Engine": "engine",
    "EngineSettings": "engine",
    "GenerationResult": "engine",
    "EncodeSettings": "mux",
    "Progress": "spec",
    "ProgressFn": "spec",
    "RenderSpec": "spec",
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
    "RenderSpec",
    "SpeedSettings",
]
