"""Decoders that keep peak memory independent of the clip's length.

Video latents are decoded in overlapping temporal tiles, blended exactly as diffusers'
`AutoencoderKLLTX2Video._temporal_tiled_decode` blends them, but each finished run of frames is
handed on as soon as it is final instead of the whole clip being concatenated first.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def configure_video_tiles(vae, tile_frames: int, stride_frames: int, spatial_tiling: bool) -> None:
    """Temporal tile length and stride in pixel frames (multiples of the VAE's temporal ratio)."""
    ratio = vae.temporal_compression_ratio
    if tile_frames % ratio or stride_frames % ratio or not 0 < stride_frames < tile_frames:
        raise ValueError(
            f"decode tiles: need 0 < stride < tile, both multiples of {ratio}; got tile {tile_frames}, "
            f"stride {stride_frames}"
        )
    vae.tile_sample_min_num_frames = tile_frames
    vae.tile_sample_stride_num_frames = stride_frames
    vae.use_tiling = spatial_tiling


@torch.inference_mode()
def iter_video_chunks(vae, latents: torch.Tensor, temb: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Yield decoded pixel chunks [B, 3, f, H, W] in [-1, 1]; together they equal the tiled decode."""
    ratio = vae.temporal_compression_ratio
    num_frames = latents.shape[2]
    total = (num_frames - 1) * ratio + 1
    tile_latent = vae.tile_sample_min_num_frames // ratio
    stride_latent = vae.tile_sample_stride_num_frames // ratio
    stride_sample = vae.tile_sample_stride_num_frames
    blend = vae.tile_sample_min_num_frames - stride_sample
    tile_latent_h = vae.tile_sample_min_height // vae.spatial_compression_ratio
    tile_latent_w = vae.tile_sample_min_width // vae.spatial_compression_ratio

    previous = None
    emitted = 0
    for start in range(0, num_frames, stride_latent):
        tile = latents[:, :, start : start + tile_latent + 1]
        if vae.use_tiling and (tile.shape[-1] > tile_latent_w or tile.shape[-2] > tile_latent_h):
            decoded = vae.tiled_decode(tile, temb, return_dict=True).sample
        else:
            decoded = vae.decoder(tile, temb)
        if previous is None:
            chunk = decoded[:, :, : stride_sample + 1]
        else:
            decoded = vae.blend_t(previous, decoded[:, :, :-1], blend)
            chunk = decoded[:, :, :stride_sample]
        previous = decoded
        chunk = chunk[:, :, : total - emitted]
        if chunk.shape[2]:
            emitted += chunk.shape[2]
            yield chunk
        if emitted >= total:
            return


def to_uint8_frames(chunk: torch.Tensor) -> np.ndarray:
    """[1, 3, f, H, W] in [-1, 1] -> [f, H, W, 3] uint8, rounded as diffusers' postprocessing rounds."""
    pixels = (chunk[0].float() / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0)
    return (pixels * 255).round().to(torch.uint8).cpu().numpy()


@torch.inference_mode()
def decode_audio(pipe, audio_latents: torch.Tensor, num_samples: int) -> np.ndarray:
    """Audio latents -> stereo waveform [2, num_samples] float32, padded or trimmed to the video.

    The causal mel decoder yields a few tens of milliseconds less than the video lasts; silence pads
    the end so that both streams end together.
    """
    mel = pipe.audio_vae.decode(audio_latents.to(pipe.audio_vae.dtype), return_dict=False)[0]
    waveform = pipe.vocoder(mel.to(pipe.vocoder.dtype))[0].float().clamp(-1, 1).cpu().numpy()
    if waveform.shape[1] >= num_samples:
        return np.ascontiguousarray(waveform[:, :num_samples])
    return np.pad(waveform, ((0, 0), (0, num_samples - waveform.shape[1])))
