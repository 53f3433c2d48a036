from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLLTX2Video

from ltxserve.engine.decode import TemporalTiles, decode_audio, iter_video_chunks, to_uint8_frames

RATIO = 8  # the VAE's temporal compression


@pytest.fixture
def vae(engine):
    """A private copy of the tiny VAE, so nothing a test does can touch the shared engine."""
    source = engine.model.source / "vae"
    return AutoencoderKLLTX2Video.from_pretrained(source, local_files_only=True).eval()


def _latents(vae, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, vae.config.latent_channels, frames, 2, 3, generator=torch.Generator().manual_seed(seed))


def _streamed(vae, latents, tiles: TemporalTiles) -> tuple[torch.Tensor, list[torch.Tensor]]:
    with torch.inference_mode():
        chunks = list(iter_video_chunks(vae, latents, tiles))
    return torch.cat(chunks, dim=2), chunks


def _untiled(vae, latents) -> torch.Tensor:
    with torch.inference_mode():
        return vae.decoder(latents, None)


def _frame_latent(frame: int) -> int:
    """The latent a pixel frame is decoded from: the first latent makes one frame, every later one eight."""
    return -(-frame // RATIO)


def _receptive_radius(vae, num_latents: int = 48) -> int:
    """How many latents either side of a frame's own latent the decoder reads, found by perturbing one."""
    latents = _latents(vae, num_latents)
    middle = num_latents // 2
    bumped = latents.clone()
    bumped[:, :, middle] += 1
    changed = (_untiled(vae, bumped) - _untiled(vae, latents)).abs().amax(dim=(0, 1, 3, 4)).nonzero().flatten()
    return max(middle - _frame_latent(int(changed.min())), _frame_latent(int(changed.max())) - middle)


def _tile_plan(num_latents: int, tiles: TemporalTiles) -> list[tuple[int, int]]:
    """The latent ranges [first, end) each tile decodes, by the reference's `split_temporal_causal`."""
    tile, stride = tiles.frames // RATIO, tiles.stride // RATIO
    plan, start = [], 0
    while True:
        end = min(start + tile, num_latents)
        plan.append((max(start - 1, 0), end))
        if end == num_latents:
            return plan
        start += stride


def _reference_tiled_decode(vae, latents, tiles: TemporalTiles) -> torch.Tensor:
    """Lightricks' temporal tiling written out plainly: every tile decoded whole, weighted by its
    trapezoidal mask (`map_temporal_slice`, `compute_trapezoidal_mask_1d(..., left_starts_from_0=True)`),
    summed into one buffer and divided by the summed weights."""
    num_latents = latents.shape[2]
    total = (num_latents - 1) * RATIO + 1
    plan = _tile_plan(num_latents, tiles)
    buffer, weights = None, torch.zeros(total, dtype=torch.float64)
    for index, (first, end) in enumerate(plan):
        decoded = _untiled(vae, latents[:, :, first:end]).double()
        start, stop = first * RATIO, (end - 1) * RATIO + 1
        mask = torch.ones(stop - start, dtype=torch.float64)
        if index > 0:  # left ramp of (overlap + 1) latents, from exactly 0
            left = 1 + (plan[index - 1][1] - first - 1) * RATIO
            mask[:left] = torch.linspace(0, 1, left + 1, dtype=torch.float64)[:-1]
        if index + 1 < len(plan):  # right ramp of `overlap` latents, ending just above 0
            right = (end - plan[index + 1][0] - 1) * RATIO
            mask[stop - start - right :] = torch.linspace(1, 0, right + 2, dtype=torch.float64)[1:-1]
        if buffer is None:
            buffer = torch.zeros(*decoded.shape[:2], total, *decoded.shape[3:], dtype=torch.float64)
        buffer[:, :, start:stop] += decoded * mask.view(1, 1, -1, 1, 1)
        weights[start:stop] += mask
    return (buffer / weights.view(1, 1, -1, 1, 1)).float()


def test_a_clip_within_one_tile_decodes_exactly_as_untiled(vae):
    latents = _latents(vae, 10)
    streamed, chunks = _streamed(vae, latents, TemporalTiles(80, 56))
    assert len(chunks) == 1
    torch.testing.assert_close(streamed, _untiled(vae, latents), rtol=0, atol=0)


@pytest.mark.parametrize(("tile", "stride", "latent_frames"), [(16, 8, 7), (80, 56, 33), (80, 56, 26), (160, 120, 48)])
def test_streamed_chunks_equal_the_references_masked_tiles(vae, tile, stride, latent_frames):
    tiles = TemporalTiles(tile, stride)
    latents = _latents(vae, latent_frames)
    streamed, chunks = _streamed(vae, latents, tiles)
    assert streamed.shape[2] == (latent_frames - 1) * RATIO + 1
    torch.testing.assert_close(streamed, _reference_tiled_decode(vae, latents, tiles), rtol=1e-5, atol=1e-5)
    # Memory is bounded by the tile, not the clip: no chunk holds more than a tile's frames.
    assert max(chunk.shape[2] for chunk in chunks) <= tile + 1
    assert len(chunks) == len(_tile_plan(latent_frames, tiles))


def test_streamed_decode_keeps_every_frame_in_step_with_the_untiled_decode(vae):
    """Frames that only one tile makes, with the decoder's whole reach inside that tile, equal the untiled
    decode; every frame, seams included, is closer to the untiled frame of its own index than to a neighbour's."""
    num_latents, tiles = 48, TemporalTiles(160, 120)
    radius = _receptive_radius(vae)
    latents = _latents(vae, num_latents, seed=1)
    streamed, _ = _streamed(vae, latents, tiles)
    untiled = _untiled(vae, latents)
    assert streamed.shape == untiled.shape

    plan = _tile_plan(num_latents, tiles)
    interior = []
    for frame in range(untiled.shape[2]):
        makers = [(first, end) for first, end in plan if first * RATIO <= frame <= (end - 1) * RATIO]
        blended = len(makers) > 1 and frame != makers[-1][0] * RATIO  # a tile's first frame weighs 0
        own = _frame_latent(frame)
        first, end = makers[0]
        reach = range(max(own - radius, 0), min(own + radius, num_latents - 1) + 1)
        if not blended and reach[0] >= first and reach[-1] < end:
            interior.append(frame)
    assert len(interior) > untiled.shape[2] // 2  # the check below must cover most of the clip
    torch.testing.assert_close(streamed[:, :, interior], untiled[:, :, interior], rtol=0, atol=1e-5)

    error = (streamed - untiled).abs().mean(dim=(0, 1, 3, 4))
    error_late = (streamed[:, :, 1:] - untiled[:, :, :-1]).abs().mean(dim=(0, 1, 3, 4))
    error_early = (streamed[:, :, :-1] - untiled[:, :, 1:]).abs().mean(dim=(0, 1, 3, 4))
    assert bool((error[1:] < error_late).all()), "a frame matches the untiled frame before it"
    assert bool((error[:-1] < error_early).all()), "a frame matches the untiled frame after it"


def test_tile_settings_are_checked():
    with pytest.raises(ValueError, match="multiples of 8"):
        TemporalTiles(20, 8).latents(RATIO)
    with pytest.raises(ValueError, match="stride < tile"):
        TemporalTiles(16, 16).latents(RATIO)


def test_uint8_conversion_maps_the_range_ends():
    chunk = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 1, 4).expand(1, 3, 1, 1, 4)
    frames = to_uint8_frames(chunk)
    assert frames.shape == (1, 1, 4, 3)
    assert frames.dtype == np.uint8
    assert frames[0, 0, :, 0].tolist() == [0, 128, 255, 255]


@pytest.mark.parametrize("num_samples", [1000, 200_000])
def test_audio_is_padded_or_trimmed_to_the_exact_sample_count(engine, num_samples):
    pipe = engine.model.text_to_video
    latents = torch.randn(1, 2, 25, 2, generator=torch.Generator().manual_seed(0))  # one second
    waveform = decode_audio(pipe, latents, num_samples)
    assert waveform.shape == (2, num_samples)
    assert waveform.dtype == np.float32
    assert np.abs(waveform).max() <= 1.0
    rate = engine.audio_sample_rate
    if num_samples > rate:
        # One second of latents gives under 1 s of sound; the rest is silence, not noise or a stretch.
        assert np.count_nonzero(waveform[:, rate:]) == 0
