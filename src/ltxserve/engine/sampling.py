"""LTX-2's fast path: the distilled model's few-step schedule at half size, the x2 latent upsampler,
then a short refinement at full size. One transformer pass per step (no guidance: the distilled
checkpoint was trained without it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .loader import LoadedModel
from .spec import Geometry, Progress, ProgressFn, RenderSpec

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


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height and cut the centre: the first frame is never stretched."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _step_reporter(stage: str, total: int, progress: ProgressFn | None):
    def on_step_end(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        if progress is not None:
            progress(Progress(stage, step + 1, total))
        return {}

    return on_step_end


def _encode_image_latent(model: LoadedModel, image: Image.Image) -> torch.Tensor:
    """The image as the VAE's first latent frame at its own size, prepared as the I2V pipeline prepares it."""
    from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf, resolve_default_image_crf

    pipe = model.image_to_video
    crf = resolve_default_image_crf(pipe.text_encoder)
    if crf:
        image = Image.fromarray(apply_image_conditioning_crf(np.array(image), crf))
    pixels = pipe.video_processor.preprocess(image, height=image.height, width=image.width)
    pixels = pixels.to(device=model.device, dtype=pipe.vae.dtype).unsqueeze(2)
    return pipe.vae.encode(pixels).latent_dist.mode()


@torch.inference_mode()
def denoise(model: LoadedModel, spec: RenderSpec, geometry: Geometry, progress: ProgressFn | None = None) -> Latents:
    t2v = model.text_to_video
    generator = torch.Generator(device="cpu").manual_seed(spec.seed)

    if progress:
        progress(Progress("encode_prompt", 0, 1))
    with model.text_encoder_on_device():
        prompt_embeds, prompt_mask, _, _ = t2v.encode_prompt(
            prompt=spec.prompt,
            do_classifier_free_guidance=False,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            device=model.device,
        )
    if progress:
        progress(Progress("encode_prompt", 1, 1))

    image = fit_image(spec.image, geometry.gen_width, geometry.gen_height) if spec.image is not None else None
    pipe = model.image_to_video if image is not None else t2v
    common = {
        "prompt_embeds": prompt_embeds,
        "prompt_attention_mask": prompt_mask,
        "num_frames": geometry.gen_frames,
        "frame_rate": float(spec.fps),
        "generator": generator,
        "output_type": "latent",
        "return_dict": True,
        "use_cross_timestep": model.profile.use_cross_timestep,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        **_NO_GUIDANCE,
    }
    if image is not None:
        common["image"] = image

    if progress:
        progress(Progress("stage1", 0, len(STAGE1_SIGMAS)))
    stage1 = pipe(
        width=geometry.stage1_width,
        height=geometry.stage1_height,
        sigmas=list(STAGE1_SIGMAS),
        num_inference_steps=len(STAGE1_SIGMAS),
        callback_on_step_end=_step_reporter("stage1", len(STAGE1_SIGMAS), progress),
        **common,
    )

    if progress:
        progress(Progress("upsample", 0, 1))
    upsampled = model.upsample(
        latents=stage1.frames, latents_normalized=False, output_type="latent", return_dict=True
    ).frames
    if image is not None:
        # The upsampled first frame is a blurred copy of the image: condition stage 2 on the image itself.
        first = _encode_image_latent(model, fit_image(image, geometry.refine_width, geometry.refine_height))
        upsampled[:, :, :1] = first.to(upsampled.dtype)
    if progress:
        progress(Progress("upsample", 1, 1))

    if progress:
        progress(Progress("stage2", 0, len(STAGE2_SIGMAS)))
    stage2 = pipe(
        width=geometry.refine_width,
        height=geometry.refine_height,
        latents=upsampled,
        audio_latents=stage1.audio,
        noise_scale=STAGE2_NOISE_SCALE,
        sigmas=list(STAGE2_SIGMAS),
        num_inference_steps=len(STAGE2_SIGMAS),
        callback_on_step_end=_step_reporter("stage2", len(STAGE2_SIGMAS), progress),
        **common,
    )
    video = stage2.frames
    if geometry.refine_scale > 1:
        if progress:
            progress(Progress("upsample_final", 0, 1))
        video = model.upsample(latents=video, latents_normalized=False, output_type="latent", return_dict=True).frames
        if progress:
            progress(Progress("upsample_final", 1, 1))
    return Latents(video=video, audio=stage2.audio)
