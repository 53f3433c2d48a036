from __future__ import annotations

import json

import pytest
import torch

from ltxserve.engine import Engine
from ltxserve.engine.loader import ModelNotFound, load_model, resolve_source
from ltxserve.engine.profile import PROFILE_FILE, ModelProfile
from ltxserve.engine.tiny import build_components, save_tiny_model
from ltxserve.order import Order

from ..conftest import TEST_ENGINE_SETTINGS

DIFFUSERS_LAYOUT = [
    "model_index.json",
    "transformer/config.json",
    "vae/config.json",
    "audio_vae/config.json",
    "vocoder/config.json",
    "connectors/config.json",
    "text_encoder/config.json",
    "tokenizer/tokenizer.json",
    "scheduler/scheduler_config.json",
    "latent_upsampler/config.json",
]


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("weights"))


def test_tiny_model_is_written_in_the_diffusers_layout(saved_tiny):
    for name in DIFFUSERS_LAYOUT:
        assert (saved_tiny / name).is_file(), name
    index = json.loads((saved_tiny / "model_index.json").read_text())
    assert index["_class_name"] == "LTX2Pipeline"
    assert index["transformer"] == ["diffusers", "LTX2VideoTransformer3DModel"]
    total = sum(path.stat().st_size for path in saved_tiny.rglob("*") if path.is_file())
    assert total < 10 * 1024 * 1024


def test_weights_directory_loads_back_equal_to_the_built_components(saved_tiny):
    loaded = load_model(str(saved_tiny), cache_dir=saved_tiny.parent, device="cpu")
    built = build_components()
    pipe = loaded.text_to_video
    for name in ("transformer", "vae", "audio_vae", "vocoder", "connectors", "text_encoder"):
        expected = built[name].state_dict()
        actual = getattr(pipe, name).state_dict()
        assert actual.keys() == expected.keys(), name
        for key, tensor in expected.items():
            torch.testing.assert_close(actual[key], tensor, rtol=0, atol=2e-6, msg=f"{name}.{key}")
    for key, tensor in built["latent_upsampler"].state_dict().items():
        torch.testing.assert_close(loaded.upsample.latent_upsampler.state_dict()[key], tensor, rtol=0, atol=2e-6)
    assert loaded.profile.name == "tiny"


def test_a_saved_directory_and_the_builtin_tiny_give_the_same_clip(engine, saved_tiny, tmp_path):
    from_path = Engine.load(str(saved_tiny), cache_dir=tmp_path, device="cpu", settings=TEST_ENGINE_SETTINGS)
    spec = Order(prompt="waves on a beach", width=1920, height=1080, fps=25, num_frames=150, seed=9)
    engine.generate(spec, tmp_path / "builtin.mp4")
    from_path.generate(spec, tmp_path / "path.mp4")
    assert (tmp_path / "builtin.mp4").read_bytes() == (tmp_path / "path.mp4").read_bytes()


def test_the_scheduler_uses_the_distilled_sigmas_unshifted(engine):
    scheduler = engine.model.text_to_video.scheduler
    assert scheduler.config.use_dynamic_shifting is False
    assert scheduler.config.shift == 1.0
    scheduler.set_timesteps(sigmas=[1.0, 0.725, 0.421875])
    assert scheduler.sigmas.tolist() == pytest.approx([1.0, 0.725, 0.421875, 0.0])


def test_a_directory_without_weights_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ModelNotFound, match=r"model_index\.json"):
        resolve_source(str(tmp_path), tmp_path)


def test_a_directory_without_the_upsampler_is_refused(saved_tiny, tmp_path):
    partial = tmp_path / "no-upsampler"
    partial.mkdir()
    (partial / "model_index.json").write_text((saved_tiny / "model_index.json").read_text())
    with pytest.raises(ModelNotFound, match="latent_upsampler"):
        resolve_source(str(partial), tmp_path)


def test_real_weights_need_no_profile_file_and_unknown_keys_are_refused(saved_tiny, tmp_path):
    copy = tmp_path / "weights"
    (copy / "transformer").mkdir(parents=True)
    (copy / "transformer" / "config.json").write_text((saved_tiny / "transformer" / "config.json").read_text())
    assert ModelProfile.read(copy) == ModelProfile(name="weights", version="2.3", render_scale=1.0)
    (copy / PROFILE_FILE).write_text(json.dumps({"render_scale": 0.5, "colour": "blue"}))
    with pytest.raises(ValueError, match="colour"):
        ModelProfile.read(copy)
