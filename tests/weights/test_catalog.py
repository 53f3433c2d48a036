"""The catalog: what each built-in entry takes from its repositories, and catalog files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub.utils import filter_repo_objects

from ltxserve.weights.catalog import BUILTIN, RECOMMENDED_MODEL, CatalogError, load_catalog

# diffusers/LTX-2.3-Distilled-Diffusers at the pinned commit: its 50 files, as listed by another project's test
# of that snapshot (README, "Real LTX-2 weights").
LTX23_DISTILLED_FILES = [
    "model_index.json",
    "audio_vae/config.json", "audio_vae/diffusion_pytorch_model.safetensors",
    "connectors/config.json", "connectors/diffusion_pytorch_model.safetensors.index.json",
    "connectors/diffusion_pytorch_model-00001-of-00002.safetensors",
    "connectors/diffusion_pytorch_model-00002-of-00002.safetensors",
    "scheduler/scheduler_config.json",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "vocoder/config.json", "vocoder/diffusion_pytorch_model.safetensors",
    *(f"processor/{name}" for name in (
        "added_tokens.json", "chat_template.jinja", "preprocessor_config.json", "processor_config.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
    )),
    *(f"tokenizer/{name}" for name in (
        "added_tokens.json", "chat_template.jinja", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
        "tokenizer_config.json",
    )),
    "text_encoder/config.json", "text_encoder/generation_config.json", "text_encoder/model.safetensors.index.json",
    *(f"text_encoder/model-{index:05d}-of-00011.safetensors" for index in range(1, 12)),
    "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors.index.json",
    *(f"transformer/diffusion_pytorch_model-{index:05d}-of-00008.safetensors" for index in range(1, 9)),
]


def test_the_ltx_2_3_entry_takes_every_file_but_the_prompt_enhancers_processor():
    model = load_catalog()[RECOMMENDED_MODEL]
    (main, upsampler) = model.sources()
    assert main.repo == "diffusers/LTX-2.3-Distilled-Diffusers"
    assert len(LTX23_DISTILLED_FILES) == 50
    taken = set(filter_repo_objects(LTX23_DISTILLED_FILES, allow_patterns=main.patterns))
    assert taken == {path for path in LTX23_DISTILLED_FILES if not path.startswith("processor/")}
    assert [part.folder for part in upsampler.parts] == ["latent_upsampler"]


def test_stale_copies_and_single_files_beside_the_diffusers_layout_are_left():
    model = load_catalog()["ltx-2-19b-distilled"]
    listing = [
        "text_encoder/model-00001-of-00005.safetensors",
        "text_encoder/model.safetensors.index.json",
        "text_encoder/diffusion_pytorch_model-00001-of-00005.safetensors",
        "text_encoder/diffusion_pytorch_model.safetensors.index.json",
        "ltx-2-19b-distilled.safetensors",
        "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        "latent_upsampler/config.json",
        "latent_upsampler/diffusion_pytorch_model.safetensors",
        "README.md",
    ]
    (lightricks,) = [source for source in model.sources() if source.repo == "Lightricks/LTX-2"]
    assert set(filter_repo_objects(listing, allow_patterns=lightricks.patterns)) == {
        "text_encoder/model-00001-of-00005.safetensors",
        "text_encoder/model.safetensors.index.json",
        "latent_upsampler/config.json",
        "latent_upsampler/diffusion_pytorch_model.safetensors",
    }


def test_the_text_encoder_comes_under_gemma_terms_and_the_rest_under_the_ltx_license():
    for model in BUILTIN:
        for part in model.parts:
            if part.folder in ("text_encoder", "tokenizer"):
                assert part.license.name.startswith("Gemma"), (model.name, part.folder)
            else:
                assert part.license.name == "LTX-2 Community License", (model.name, part.folder)


def write(tmp_path, catalog) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


_TEXT = ("text_encoder", "tokenizer")


def entry(**changes):
    folders = ("", "transformer", "connectors", "vae", "audio_vae", "vocoder", "scheduler", "latent_upsampler")
    parts = [{"folder": folder, "repo": "someone/ltx-mirror", "license": "ltx-2"} for folder in folders]
    parts += [{"folder": folder, "repo": "someone/ltx-mirror", "license": "gemma-3"} for folder in _TEXT]
    return {"name": RECOMMENDED_MODEL, "release": "2.3", "parts": parts} | changes


def test_a_catalog_file_replaces_an_entry_of_the_same_name(tmp_path):
    models = load_catalog(write(tmp_path, {"models": [entry()]}))
    assert {part.repo for part in models[RECOMMENDED_MODEL].parts} == {"someone/ltx-mirror"}
    assert models[RECOMMENDED_MODEL].parts[0].patterns == ("model_index.json",)
    assert "ltx-2-19b-distilled" in models


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        ({"models": [entry(parts=entry()["parts"][1:-2])]}, "no part for model_index.json, text_encoder, tokenizer"),
        ({"models": [entry(parts=[*entry()["parts"], entry()["parts"][1]])]}, "more than one part for transformer"),
        ({"models": [entry(release="3.0")]}, "models.0.release: Value error, one of 2.0, 2.3, 2.5"),
        ({"models": [entry(parts=[{**entry()["parts"][0], "license": "mit"}])]}, "unknown license 'mit'"),
        ({"models": [entry(colour="blue")]}, "models.0.colour: Extra inputs are not permitted"),
    ],
)
def test_a_catalog_files_mistakes_are_named(tmp_path, catalog, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(write(tmp_path, catalog))


def test_an_unreadable_catalog_file_is_named(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the catalog"):
        load_catalog(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CatalogError, match="is not JSON"):
        load_catalog(tmp_path / "broken.json")
