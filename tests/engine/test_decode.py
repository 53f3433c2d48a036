from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLLTX2Video

from ltxserve.engine.decode import configure_video_tiles, decode_audio, iter_video_chunks, to_uint8_frames


@pytest.fixture
def vae(engine):
    """A private copy of the tiny VAE, so changing its tile settings cannot touch the shared engine."""
    source = engine.model.source / "vae"
    return AutoencoderKLLTX2Video.from_pretrained(source, local_files_only=True).eval()


@pytest.mark.parametrize(("tile", "stride", "latent_frames"), [(16, 8, 7), (24, 16, 10), (64, 56, 33)])
def test_streamed_chunks_equal_diffusers_tiled_decode(vae, tile, stride, latent_frames):
    configure_video_tiles(vae, tile, stride, spatial_tiling=False)
    latents = torch.randn(1, vae.config.latent_channels, latent_frames, 2, 3, generator=torch.Generator().manual_seed(0))

    with torch.inference_mode():
        chunks = list(iter_video_chunks(vae, latents))
        vae.use_framewise_decoding = True
        reference = vae.decode(latents, return_dict=False)[0]

    streamed = torch.cat(chunks, dim=2)
    assert streamed.shape == reference.shape
    assert streamed.shape[2] == (latent_frames - 1) * 8 + 1
    torch.testing.assert_close(streamed, reference, rtol=0, atol=0)
    # Memory is bounded by the tile, not the clip: no chunk holds more than one stride of frames (+1).
    assert max(chunk.shape[2] for chunk in chunks) <= stride + 1
    if latent_frames * 8 > 2 * tile:
        assert len(chunks) > 2


def test_tile_settings_are_checked(vae):
    with pytest.raises(ValueError, match="multiples of 8"):
        configure_video_tiles(vae, 20, 8, spatial_tiling=False)
    with pytest.raises(ValueError, match="stride < tile"):
        configure_video_tiles(vae, 16, 16, spatial_tiling=False)


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
    if num_samples > 24000:
        # One second of latents gives under 1 s of sound; the rest is silence, not noise or a stretch.
        assert np.count_nonzero(waveform[:, 24000:]) == 0
