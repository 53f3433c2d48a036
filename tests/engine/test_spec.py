from __future__ import annotations

import pytest

from ltxserve.engine.spec import Geometry
from ltxserve.order import Order


def _spec(width, height, fps=25, seconds=8):
    return Order(prompt="x", width=width, height=height, fps=fps, num_frames=fps * seconds, seed=0)


@pytest.mark.parametrize(
    ("fps", "seconds", "gen_frames"),
    [(25, 6, 153), (25, 8, 201), (25, 10, 257), (50, 6, 305), (50, 8, 401), (50, 10, 505)],
)
def test_frame_count_is_the_smallest_8k_plus_1_that_covers_the_request(fps, seconds, gen_frames):
    geometry = Geometry.plan(_spec(1920, 1080, fps, seconds))
    assert geometry.gen_frames == gen_frames
    assert (geometry.gen_frames - 1) % 8 == 0
    assert geometry.gen_frames >= geometry.out_frames > geometry.gen_frames - 8


@pytest.mark.parametrize(
    ("size", "gen", "crop"),
    [
        ((1920, 1080), (1920, 1088), (0, 4, 1920, 1080)),
        ((2560, 1440), (2560, 1472), (0, 16, 2560, 1440)),
        ((3840, 2160), (3840, 2176), (0, 8, 3840, 2160)),
        ((1080, 1920), (1088, 1920), (4, 0, 1080, 1920)),
        ((1440, 1440), (1472, 1472), (16, 16, 1440, 1440)),
    ],
)
def test_real_weights_render_on_the_64_grid_and_crop_without_scaling(size, gen, crop):
    geometry = Geometry.plan(_spec(*size))
    assert (geometry.gen_width, geometry.gen_height) == gen
    assert (geometry.stage1_width % 32, geometry.stage1_height % 32) == (0, 0)
    assert geometry.crop_box == crop


def test_a_reduced_render_scale_keeps_the_output_aspect_in_the_crop():
    geometry = Geometry.plan(_spec(1920, 1080), render_scale=1 / 16)
    assert (geometry.gen_width, geometry.gen_height) == (128, 128)
    left, top, width, height = geometry.crop_box
    assert width / height == pytest.approx(16 / 9, rel=0.02)
    assert (left, width) == (0, 128)
    assert top == (128 - height) // 2


def test_refining_at_half_size_plans_on_a_128_grid_so_both_upsamples_are_exact():
    geometry = Geometry.plan(_spec(3840, 2160), refine_max_pixels=2560 * 1440)
    assert geometry.refine_scale == 2
    assert (geometry.gen_width, geometry.gen_height) == (3840, 2176)
    assert (geometry.refine_width, geometry.refine_height) == (1920, 1088)
    assert (geometry.stage1_width, geometry.stage1_height) == (960, 544)
    assert geometry.crop_box == (0, 8, 3840, 2160)
    # An output whose 64-grid size would not halve twice onto the grid is planned on the next 128 step.
    odd = Geometry.plan(_spec(2880, 1620), refine_max_pixels=2560 * 1440)
    assert (odd.gen_width % 128, odd.gen_height % 128) == (0, 0)
    assert odd.stage1_width % 32 == odd.stage1_height % 32 == 0
