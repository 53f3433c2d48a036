"""The words requests are made of, each written once: resolutions, aspect ratios, durations, frame rates,
the defaults, and the stages a generation reports. The HTTP schemas, the settings, the price list, the
engine's progress, the CLI's help and the playground's choices all read them from here."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal, get_args

MAX_PROMPT_CHARS = 5000
MAX_SEED = 2**32 - 1

Resolution = Literal["1080p", "2k", "4k"]
AspectRatio = Literal["16:9", "9:16", "1:1"]
Duration = Literal[6, 8, 10]
Fps = Literal[25, 50]

RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
ASPECT_RATIOS: tuple[AspectRatio, ...] = get_args(AspectRatio)
DURATIONS: tuple[Duration, ...] = get_args(Duration)
FPS: tuple[Fps, ...] = get_args(Fps)

# Short side in pixels, in RESOLUTIONS' order: 1920x1080, 2560x1440, 3840x2160 at 16:9.
SHORT_SIDE: dict[str, int] = dict(zip(RESOLUTIONS, (1080, 1440, 2160), strict=True))
ASPECT_LABELS: dict[str, str] = dict(zip(ASPECT_RATIOS, ("landscape", "portrait", "square"), strict=True))

DEFAULT_DURATION: Duration = 8
DEFAULT_RESOLUTION: Resolution = "2k"
DEFAULT_ASPECT_RATIO: AspectRatio = "16:9"
DEFAULT_FPS: Fps = 25


def output_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) in pixels: 16:9 and 9:16 put the short side on the height or the width, 1:1 on both."""
    short = SHORT_SIDE[resolution]
    long = short * 16 // 9
    return {"16:9": (long, short), "9:16": (short, long), "1:1": (short, short)}[aspect_ratio]


def choices(values: tuple[object, ...]) -> str:
    """'a, b or c': a vocabulary in a sentence (the CLI's help)."""
    words = [str(value) for value in values]
    return f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else words[0]


# Up to 2k, stage 2 refines at full size; above it (4k) it refines at half size and the latents are upsampled
# in latent space once more: 11x fewer denoising FLOPs (bench/gpu-speed-notes.md), and 3840 px lies beyond the
# positions LTX-2 was trained on.
REFINE_MAX_PIXELS = math.prod(output_size("2k", "16:9"))


class Stage(StrEnum):
    """The stages of the fast path, in the order it runs them."""

    ENCODE_PROMPT = "encode_prompt"
    STAGE1 = "stage1"
    UPSAMPLE = "upsample"
    STAGE2 = "stage2"
    UPSAMPLE_FINAL = "upsample_final"  # only when stage 2 refines at half size (4k)
    DECODE_AUDIO = "decode_audio"
    DECODE_VIDEO = "decode_video"


# Rough shares of a full-size run's time on a GPU (percent): progress is weighted by them.
STAGE_WEIGHTS: dict[Stage, int] = {
    Stage.ENCODE_PROMPT: 2,
    Stage.STAGE1: 25,
    Stage.UPSAMPLE: 3,
    Stage.STAGE2: 45,
    Stage.UPSAMPLE_FINAL: 0,  # its share is within stage 2's
    Stage.DECODE_AUDIO: 3,
    Stage.DECODE_VIDEO: 22,
}

# What a person reads while a stage runs (the CLI's bar, the playground's).
STAGE_LABELS: dict[Stage, str] = {
    Stage.ENCODE_PROMPT: "Encoding the prompt",
    Stage.STAGE1: "Denoising at half size",
    Stage.UPSAMPLE: "Upsampling latents ×2",
    Stage.STAGE2: "Refining at full size",
    Stage.UPSAMPLE_FINAL: "Upsampling latents ×2 to full size",
    Stage.DECODE_AUDIO: "Decoding audio",
    Stage.DECODE_VIDEO: "Decoding and encoding video",
}


def vocabulary() -> dict[str, object]:
    """All of the above as JSON, for clients that cannot import Python (the playground)."""
    return {
        "resolutions": list(RESOLUTIONS),
        "aspect_ratios": [{"value": ratio, "label": f"{ratio} {ASPECT_LABELS[ratio]}"} for ratio in ASPECT_RATIOS],
        "durations": list(DURATIONS),
        "fps": list(FPS),
        "defaults": {"duration": DEFAULT_DURATION, "resolution": DEFAULT_RESOLUTION,
                     "aspect_ratio": DEFAULT_ASPECT_RATIO, "fps": DEFAULT_FPS},
        "stages": {str(stage): label for stage, label in STAGE_LABELS.items()},
    }
