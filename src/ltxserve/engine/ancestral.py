"""Ancestral Euler for LTX-2.5's stage 1, as Lightricks' reference samples it.

ltx-core's `EulerAncestralDiffusionStep` (eta 1, s_noise 1), in the rectified-flow form: step down to
sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta), then add fresh noise so that the sample has
exactly sigma_next of noise again. With a perfect denoiser the result is distributed as
(1 - sigma_next) * x0 + sigma_next * N(0, 1), as after a deterministic step, but only part of its noise is
the old noise. The reference draws that noise from one generator seeded `seed + 10000`, the video's
before the audio's at each step.

diffusers' own `LTXEulerAncestralRFScheduler` has the same update but cannot stand in for the pipelines'
scheduler: they pass sigmas without the final 0 and never hand the scheduler a generator.
"""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteSchedulerOutput

# ltx-pipelines' DistilledPipeline: ANCESTRAL_ETA, ANCESTRAL_S_NOISE, ANCESTRAL_NOISE_SEED_OFFSET.
ETA = 1.0
S_NOISE = 1.0
NOISE_SEED_OFFSET = 10000


class SharedNoise:
    """One noise stream for the video and the audio scheduler. The pipelines deep-copy the scheduler for
    the audio; the copy must draw from the same generator, after the video, not from a clone of it."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def __deepcopy__(self, memo: dict) -> SharedNoise:
        return self

    def like(self, sample: torch.Tensor) -> torch.Tensor:
        return torch.randn(sample.shape, generator=self.generator, dtype=torch.float32).to(sample.device)


class AncestralEulerScheduler(FlowMatchEulerDiscreteScheduler):
    """The pipelines' Euler scheduler with the reference's ancestral step. Set `noise` before sampling."""

    noise: SharedNoise | None = None

    def step(  # type: ignore[override]
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        *args,
        return_dict: bool = True,
        **kwargs,
    ) -> FlowMatchEulerDiscreteSchedulerOutput | tuple[torch.Tensor]:
        if self.noise is None:
            raise RuntimeError("AncestralEulerScheduler.noise is not set")
        if self.step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self.step_index].float()
        sigma_next = self.sigmas[self.step_index + 1].float()
        x = sample.float()
        denoised = x - sigma * model_output.float()  # the model predicts the velocity noise - x0
        if sigma_next == 0:
            prev = denoised
        else:
            sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * ETA)
            ratio = sigma_down / sigma
            prev = ratio * x + (1 - ratio) * denoised
            alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
            renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2).clamp(min=0).sqrt()
            prev = alpha_next / alpha_down * prev + self.noise.like(x) * S_NOISE * renoise
        self._step_index += 1
        prev = prev.to(model_output.dtype)
        if not return_dict:
            return (prev,)
        return FlowMatchEulerDiscreteSchedulerOutput(prev_sample=prev)
