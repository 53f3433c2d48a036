"""The engine's progress events, and the model-grid geometry that delivers exactly the order's output."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..order.vocabulary import STAGE_WEIGHTS, Stage

if TYPE_CHECKING:
    from ..order import Order

# LTX-2's video VAE: 32x spatial and 8x temporal compression. Two stages (half size, then a 2x latent
# upsample) need the full size on a 64 grid; frame counts must be 8k+1.
SPATIAL_GRID = 64
TEMPORAL_RATIO = 8


@dataclass(frozen=True)
class Progress:
    stage: Stage
    step: int
    total: int

    @property
    def percent(self) -> float:
        """Of the whole generation, weighting each stage by its share of a full-size run's time."""
        done = 0.0
        for stage, weight in STAGE_WEIGHTS.items():
            if stage == self.stage:
                return round(done + weight * min(self.step, self.total) / max(self.total, 1), 1)
            done += weight
        return round(done, 1)


# A progress callback may raise to abort the generation (the exception propagates to the caller).
ProgressFn = Callable[[Progress], None]


def _ceil_to(value: float, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple - 1e-9) * multiple)


@dataclass(frozen=True)
class Geometry:
    """Sizes on the model's grid, and how model frames map back onto the output."""

    gen_width: int
    gen_height: int
    gen_frames: int
    out_width: int
    out_height: int
    out_frames: int
    # 1: stage 2 refines at full size. 2: it refines at half size, and a second x2 latent upsample,
    # without refinement, brings the latents to full size (the cheap way to 4k).
    refine_scale: int = 1

    @property
    def refine_width(self) -> int:
        return self.gen_width // self.refine_scale

    @property
    def refine_height(self) -> int:
        return self.gen_height // self.refine_scale

    @property
    def stage1_width(self) -> int:
        return self.refine_width // 2

    @property
    def stage1_height(self) -> int:
        return self.refine_height // 2

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """(left, top, width, height) in model pixels that scales onto the output without distortion.

        The output's aspect ratio is cut from the centre of the model frame; scaling that box to the
        output size is then uniform. A model frame at least as large as the output is only cropped,
        never scaled down (real weights render on the grid just above the output size).
        """
        scale = max(1.0, self.out_width / self.gen_width, self.out_height / self.gen_height)
        width = min(self.gen_width, round(self.out_width / scale))
        height = min(self.gen_height, round(self.out_height / scale))
        return (self.gen_width - width) // 2, (self.gen_height - height) // 2, width, height

    @classmethod
    def plan(cls, order: Order, render_scale: float = 1.0, refine_max_pixels: int | None = None) -> Geometry:
        return cls.of_output(order.width, order.height, order.num_frames, render_scale, refine_max_pixels)

    @classmethod
    def of_output(
        cls, width: int, height: int, num_frames: int, render_scale: float = 1.0, refine_max_pixels: int | None = None
    ) -> Geometry:
        """For an output of `width` x `height` and `num_frames`. `refine_max_pixels`: for outputs of more
        pixels a frame, stage 2 refines at half size."""
        gen_frames = math.ceil((num_frames - 1) / TEMPORAL_RATIO) * TEMPORAL_RATIO + 1
        grid, refine_scale = SPATIAL_GRID, 1
        if refine_max_pixels is not None and width * height > refine_max_pixels:
            # Two x2 upsamples: the full size must halve twice onto the 64 grid.
            grid, refine_scale = 2 * SPATIAL_GRID, 2
        return cls(
            gen_width=_ceil_to(width * render_scale, grid),
            gen_height=_ceil_to(height * render_scale, grid),
            gen_frames=gen_frames,
            out_width=width,
            out_height=height,
            out_frames=num_frames,
            refine_scale=refine_scale,
        )
