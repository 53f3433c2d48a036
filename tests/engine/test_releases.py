"""What differs between LTX-2 releases, on tiny models shaped like each: how each is recognised from its
configs, the audio/video cross-attention timestep, the vocoder's precision and LTX-2.5's stage-1 sampler."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from ltxserve.engine.ancestral import AncestralEulerScheduler, SharedNoise
from ltxserve.engine.loader import load_model
from ltxserve.engine.profile import PROFILE_FILE, ModelProfile
from ltxserve.engine.sampling import denoise
from ltxserve.engine.spec import Geometry
from ltxserve.engine.tiny import save_tiny_model
from ltxserve.order import Order


@pytest.fixture(scope="module")
def weights(tmp_path_factory, engine):
    """A weights directory per release: the built-in tiny model is 2.3, the others are written here."""
    root = tmp_path_factory.mktemp("releases")
    return {
        "2.0": save_tiny_model(root / "2.0", "2.0"),
        "2.3": engine.model.source,
        "2.5": save_tiny_model(root / "2.5", "2.5"),
    }


def _load(path, **kwargs):
    return load_model(str(path), cache_dir=path.parent, device="cpu", **kwargs)


SPEC = Order(prompt="rain on a tin roof", width=1920, height=1080, fps=25, num_frames=25, seed=11)


def _denoise(model, spec=SPEC):
    return denoise(model, spec, Geometry.plan(spec, model.profile.render_scale))


@pytest.mark.parametrize(
    ("release", "cross_timestep", "ancestral"), [("2.0", False, False), ("2.3", True, False), ("2.5", True, True)]
)
def test_each_release_is_recognised_from_its_configs(weights, release, cross_timestep, ancestral):
    profile = ModelProfile.read(weights[release])
    assert (profile.version, profile.use_cross_timestep, profile.ancestral_stage1) == (
        release,
        cross_timestep,
        ancestral,
    )


def test_a_gemma_4_text_encoder_marks_ltx_2_5():
    transformer = {"cross_attn_mod": True, "ff_bias": True}
    assert ModelProfile.detect(transformer, "gemma3").version == "2.3"
    assert ModelProfile.detect(transformer, "gemma4_unified").version == "2.5"


def test_ltxserve_json_overrides_what_the_configs_say(weights, tmp_path):
    copy = shutil.copytree(weights["2.0"], tmp_path / "2.0")
    (copy / PROFILE_FILE).write_text(json.dumps({"use_cross_timestep": True}))
    assert ModelProfile.read(copy).use_cross_timestep is True
    (copy / PROFILE_FILE).write_text(json.dumps({"version": "2.5", "render_scale": 0.5}))
    profile = ModelProfile.read(copy)
    assert (profile.version, profile.ancestral_stage1, profile.render_scale) == ("2.5", True, 0.5)
    (copy / PROFILE_FILE).write_text(json.dumps({"version": "3.0"}))
    with pytest.raises(ValueError, match="unknown LTX-2 version"):
        ModelProfile.read(copy)


@pytest.mark.parametrize(("release", "expected"), [("2.0", False), ("2.3", True)])
def test_the_transformer_gets_the_releases_cross_attention_timestep(weights, monkeypatch, release, expected):
    """LTX-2.0 weights carry no ltxserve.json; they must still be run with their own timestep."""
    model = _load(weights[release])
    seen = []
    forward = model.text_to_video.transformer.forward

    def recording(*args, **kwargs):
        seen.append(kwargs["use_cross_timestep"])
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.text_to_video.transformer, "forward", recording)
    _denoise(model)
    assert seen and set(seen) == {expected}


def test_the_bandwidth_extending_vocoder_runs_in_float32_at_full_precision(weights):
    """LTX-2.3's vocoder is read and run in float32 under a bfloat16 model: its sound is the float32 model's."""
    half = _load(weights["2.3"], dtype="bfloat16")
    full = _load(weights["2.3"], dtype="float32")
    # Everything else stays bfloat16, under both pipelines (diffusers' `from_pipe` once widened it all).
    for name in ("transformer", "vae", "audio_vae", "connectors", "text_encoder"):
        assert getattr(half.text_to_video, name).dtype == torch.bfloat16, name
        assert getattr(half.image_to_video, name) is getattr(half.text_to_video, name)
    assert half.text_to_video.vocoder.dtype == torch.float32
    for name, tensor in full.text_to_video.vocoder.state_dict().items():
        assert torch.equal(half.text_to_video.vocoder.state_dict()[name], tensor), name
    mel = torch.randn(1, 2, 100, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(half.text_to_video.vocoder(mel), full.text_to_video.vocoder(mel), rtol=0, atol=0)


def test_the_plain_vocoder_of_ltx_2_0_stays_at_the_models_dtype(weights):
    assert _load(weights["2.0"], dtype="bfloat16").text_to_video.vocoder.dtype == torch.bfloat16


def test_an_ancestral_step_keeps_the_noise_level_and_draws_fresh_noise():
    """With a perfect denoiser, x_next = (1 - s') x0 + s' * noise, with noise of unit variance of which a share
    sigma_down * alpha' / (alpha_down * s') is the old noise (eta 1: sigma_down = s'^2 / s)."""
    scheduler = AncestralEulerScheduler(shift=1.0, use_dynamic_shifting=False)
    scheduler.set_timesteps(sigmas=[0.909375, 0.725])
    scheduler.noise = SharedNoise(0)
    sigma, sigma_next = 0.909375, 0.725
    generator = torch.Generator().manual_seed(1)
    x0 = torch.randn(400_000, generator=generator)
    old = torch.randn(400_000, generator=generator)
    x = (1 - sigma) * x0 + sigma * old
    velocity = old - x0  # what a perfect model predicts
    x_next = scheduler.step(velocity, scheduler.timesteps[0], x, return_dict=False)[0]

    noise = (x_next - (1 - sigma_next) * x0) / sigma_next
    assert noise.std().item() == pytest.approx(1.0, abs=0.01)
    sigma_down = sigma_next**2 / sigma
    share = sigma_down * (1 - sigma_next) / ((1 - sigma_down) * sigma_next)
    assert torch.corrcoef(torch.stack([noise, old]))[0, 1].item() == pytest.approx(share, abs=0.01)
    # The last step lands on the prediction itself.
    assert scheduler.step(velocity, scheduler.timesteps[1], x_next, return_dict=False)[0].shape == x.shape


def test_the_audio_scheduler_copy_draws_from_the_same_noise_stream():
    import copy

    noise = SharedNoise(5)
    assert copy.deepcopy(noise) is noise


def test_ltx_2_5_samples_stage_1_ancestrally_and_stage_2_with_euler(weights, monkeypatch):
    model = _load(weights["2.5"])
    steps = []
    step = AncestralEulerScheduler.step

    def counting(self, *args, **kwargs):
        steps.append(self)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(AncestralEulerScheduler, "step", counting)
    ancestral = _denoise(model)
    assert len(steps) == 2 * 8  # video and audio, each of stage 1's eight steps; none of stage 2's
    assert type(model.text_to_video.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"

    again = _denoise(model)
    torch.testing.assert_close(again.video, ancestral.video, rtol=0, atol=0)
    euler = _denoise(dataclasses.replace(model, profile=dataclasses.replace(model.profile, ancestral_stage1=False)))
    assert (euler.video - ancestral.video).abs().mean() > 1e-3
    assert (euler.audio - ancestral.audio).abs().mean() > 1e-3
