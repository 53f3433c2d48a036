"""Decoders that keep peak memory independent of the clip's length.

Video latents are decoded in overlapping temporal tiles, as Lightricks' reference video VAE tiles them
(ltx-core `video_vae.py`: `split_temporal_causal`, `map_temporal_slice`, trapezoidal masks), and each
run of frames is handed on as soon as it is final instead of the whole clip being concatenated first.

A tile decoded on its own turns its first latent into one frame and every later latent into eight, so a
tile starting at latent i begins at pixel frame 8·i. Each tile after the first therefore starts one latent
early, on the last frame the previous tile also made, and fades in from weight 0 across the frames both
tiles make. (diffusers' `_temporal_tiled_decode` drops a tile's last frame instead of its first, which
puts every frame after the first seam one frame late.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TemporalTiles:
    """Decode tiles in pixel frames: each tile owns `frames` frames, and the next one starts `stride` later.

    The reference decodes 80-frame tiles overlapping by 24. Longer tiles hold more frames in memory;
    wider overlaps blend seams more smoothly for more decoding done twice.
    """

    frames: int = 80
    stride: int = 56

    def latents(self, ratio: int) -> tuple[int, int]:
        """(tile, stride) in latent frames, checked against the VAE's temporal ratio."""
        if self.frames % ratio or self.stride % ratio or not 0 < self.stride < self.frames:
            raise ValueError(
                f"decode tiles: need 0 < stride < tile, both multiples of {ratio}; got tile {self.frames}, "
                f"stride {self.stride}"
            )
        return self.frames // ratio, self.stride // ratio


@torch.inference_mode()
def iter_video_chunks(
    vae, latents: torch.Tensor, tiles: TemporalTiles, temb: torch.Tensor | None = None
) -> Iterator[torch.Tensor]:
    """Yield decoded pixel chunks [B, 3, f, H, W] in [-1, 1], in order, (F - 1) * 8 + 1 frames in all."""
    ratio = vae.temporal_compression_ratio
    tile, stride = tiles.latents(ratio)
    num_latents = latents.shape[2]
    tail = None  # the previous tile's last frames, which this tile makes too
    start = 0
    while True:
        end = min(start + tile, num_latents)
        first = max(start - 1, 0)
        decoded = _decode_tile(vae, latents[:, :, first:end], temb)
        if tail is not None:
            overlap = tail.shape[2]
            # The reference's fade-in starts at exactly 0: this tile's lone first frame counts for nothing.
            ramp = torch.arange(overlap, device=decoded.device, dtype=decoded.dtype).div_(overlap).view(1, 1, -1, 1, 1)
            decoded[:, :, :overlap] = torch.lerp(tail, decoded[:, :, :overlap], ramp)
        if end == num_latents:
            yield decoded
            return
        # Frames from the next tile's first latent on are blended with it; everything before is final.
        final = (start + stride - 1 - first) * ratio
        yield decoded[:, :, :final]
        tail = decoded[:, :, final:].clone()  # not a view: the rest of this tile can be freed
        start += stride


def _decode_tile(vae, latents: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
    tile_h = vae.tile_sample_min_height // vae.spatial_compression_ratio
    tile_w = vae.tile_sample_min_width // vae.spatial_compression_ratio
    if vae.use_tiling and (latents.shape[-1] > tile_w or latents.shape[-2] > tile_h):
        return vae.tiled_decode(latents, temb, return_dict=True).sample
    return vae.decoder(latents, temb)


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
