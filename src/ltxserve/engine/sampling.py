"""LTX-2's fast path: the distilled model's few-step schedule at half size, the x2 latent upsampler,
then a short refinement at full size. One transformer pass per step (no guidance: the distilled
checkpoint was trained without it)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..order import Order
from ..order.vocabulary import Stage
from .loader import LoadedModel
from .spec import Geometry, Progress, ProgressFn

# Lightricks' DistilledPipeline schedules (ltx-pipelines' constants; diffusers' ltx2/utils.py). The
# scheduler appends the final 0.0.
STAGE1_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
STAGE2_SIGMAS = (0.909375, 0.725, 0.421875)
# Stage 2 starts from the upsampled latent re-noised to its first sigma.
STAGE2_NOISE_SCALE = STAGE2_SIGMAS[0]
MAX_SEQUENCE_LENGTH = 1024

# Every guidance term off: one conditional pass per step.
_NO_GUIDANCE = {
    "guidance_scale": 1.0,
    "stg_scale": 0.0,
    "modality_scale": 1.0,
    "guidance_rescale": 0.0,
    "audio_guidance_scale": 1.0,
    "audio_stg_scale": 0.0,
    "audio_modality_scale": 1.0,
    "audio_guidance_rescale": 0.0,
    "spatio_temporal_guidance_blocks": None,
}


@dataclass
class Latents:
    """Denoised latents in VAE units (denormalised), ready for the decoders."""

    video: torch.Tensor  # [B, C, F, H, W]
    audio: torch.Tensor  # [B, C, L, M]


def prepare_image(image: Image.Image, crf: int) -> torch.Tensor:
    """The input image as the model saw images in training: one H.264 frame at `crf`, compressed at the
    image's own size (ltx-pipelines' `load_image_and_preprocess`; diffusers' port of its `preprocess`).
    Returns [H, W, 3] float32 in 0..255, ready to be fitted to each stage's size."""
    from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf

    rgb = np.array(image.convert("RGB"))
    if crf:
        rgb = apply_image_conditioning_crf(rgb, crf)
    return torch.from_numpy(np.ascontiguousarray(rgb)).float()


def fit_image(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[H, W, 3] in 0..255 -> [1, 3, height, width] in [0, 1]: scaled to cover, then the centre cut out, so the
    first frame is never stretched. Bilinear without antialiasing, sizes rounded up, as the reference's
    `resize_and_center_crop`."""
    source = pixels.permute(2, 0, 1).unsqueeze(0)
    scale = max(height / source.shape[2], width / source.shape[3])
    size = (math.ceil(source.shape[2] * scale), math.ceil(source.shape[3] * scale))
    resized = torch.nn.functional.interpolate(source, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return (resized[:, :, top : top + height, left : left + width] / 255).clamp(0, 1)


def _step_reporter(stage: Stage, total: int, progress: ProgressFn | None):
    def on_step_end(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        if progress is not None:
            progress(Progress(stage, step + 1, total))
        return {}

    return on_step_end


def _encode_image_latent(model: LoadedModel, image: torch.Tensor) -> torch.Tensor:
    """A fitted image ([1, 3, H, W] in [0, 1]) as the VAE's first latent frame."""
    vae = model.image_to_video.vae
    pixels = (image * 2 - 1).to(device=model.device, dtype=vae.dtype).unsqueeze(2)
    return vae.encode(pixels).latent_dist.mode()


@contextlib.contextmanager
def _stage1_sampler(pipe, model: LoadedModel, seed: int) -> Iterator[None]:
    """LTX-2.5's stage 1 samples with ancestral Euler; everything else, and every other release, with Euler."""
    if not model.profile.ancestral_stage1:
        yield
        return
    from .ancestral import NOISE_SEED_OFFSET, AncestralEulerScheduler, SharedNoise

    euler = pipe.scheduler
    ancestral = AncestralEulerScheduler.from_config(euler.config)
    ancestral.noise = SharedNoise(seed + NOISE_SEED_OFFSET)
    pipe.scheduler = ancestral
    try:
        yield
    finally:
        pipe.scheduler = euler


@torch.inference_mode()
def denoise(
    model: LoadedModel,
    order: Order,
    geometry: Geometry,
    image: Image.Image | None = None,
    progress: ProgressFn | None = None,
) -> Latents:
    """`image`: the decoded first frame, for image-to-video."""
    t2v = model.text_to_video
    generator = torch.Generator(device="cpu").manual_seed(order.seed)

    if progress:
        progress(Progress(Stage.ENCODE_PROMPT, 0, 1))
    with model.text_encoder_on_device():
        prompt_embeds, prompt_mask, _, _ = t2v.encode_prompt(
            prompt=order.prompt,
            do_classifier_free_guidance=False,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            device=model.device,
        )
    if progress:
        progress(Progress(Stage.ENCODE_PROMPT, 1, 1))

    pixels = None
    if image is not None:
        from diffusers.pipelines.ltx2.utils import resolve_default_image_crf

        # Compressed once; each stage fits it to its own size from there, as the reference does.
        pixels = prepare_image(image, resolve_default_image_crf(t2v.text_encoder))
    pipe = model.image_to_video if pixels is not None else t2v
    common = {
        "prompt_embeds": prompt_embeds,
        "prompt_attention_mask": prompt_mask,
        "num_frames": geometry.gen_frames,
        "frame_rate": float(order.fps),
        "generator": generator,
        "output_type": "latent",
        "return_dict": True,
        "use_cross_timestep": model.profile.use_cross_timestep,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        **_NO_GUIDANCE,
    }
    if pixels is not None:
        # Already compressed: the pipeline's own preparation would compress again and stretch to fit.
        common["image_crf"] = 0

    if progress:
        progress(Progress(Stage.STAGE1, 0, len(STAGE1_SIGMAS)))
    stage1_image = {}
    if pixels is not None:
        stage1_image["image"] = fit_image(pixels, geometry.stage1_width, geometry.stage1_height)
    with _stage1_sampler(pipe, model, order.seed):
        stage1 = pipe(
            width=geometry.stage1_width,
            height=geometry.stage1_height,
            sigmas=list(STAGE1_SIGMAS),
            num_inference_steps=len(STAGE1_SIGMAS),
            callback_on_step_end=_step_reporter(Stage.STAGE1, len(STAGE1_SIGMAS), progress),
            **stage1_image,
            **common,
        )

    if progress:
        progress(Progress(Stage.UPSAMPLE, 0, 1))
    upsampled = model.upsample(
        latents=stage1.frames, latents_normalized=False, output_type="latent", return_dict=True
    ).frames
    if pixels is not None:
        # The upsampled first frame is a blurred copy of the image: condition stage 2 on the image itself.
        first = _encode_image_latent(model, fit_image(pixels, geometry.refine_width, geometry.refine_height))
        upsampled[:, :, :1] = first.to(upsampled.dtype)
    if progress:
        progress(Progress(Stage.UPSAMPLE, 1, 1))

    if progress:
        progress(Progress(Stage.STAGE2, 0, len(STAGE2_SIGMAS)))
    stage2 = pipe(
        width=geometry.refine_width,
        height=geometry.refine_height,
        latents=upsampled,
        audio_latents=stage1.audio,
        noise_scale=STAGE2_NOISE_SCALE,
        sigmas=list(STAGE2_SIGMAS),
        num_inference_steps=len(STAGE2_SIGMAS),
        callback_on_step_end=_step_reporter(Stage.STAGE2, len(STAGE2_SIGMAS), progress),
        **common,
    )
    video = stage2.frames
    if geometry.refine_scale > 1:
        if progress:
            progress(Progress(Stage.UPSAMPLE_FINAL, 0, 1))
        video = model.upsample(latents=video, latents_normalized=False, output_type="latent", return_dict=True).frames
        if progress:
            progress(Progress(Stage.UPSAMPLE_FINAL, 1, 1))
    return Latents(video=video, audio=stage2.audio)
