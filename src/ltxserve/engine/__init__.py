"""Video generation: LTX-2's fast path from a RenderSpec to an MP4 file."""

from .engine import Engine, EngineSettings, GenerationResult
from .mux import EncodeSettings
from .spec import Progress, ProgressFn, RenderSpec
from .speed import SpeedSettings

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
