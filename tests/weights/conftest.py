"""The tiny model published on a stand-in Hub (hub.py), split over repositories the way the real weights are, and
a catalog file naming it, so that `ltxserve models pull` runs its real download code against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltxserve.engine.tiny import ensure_tiny_model

from .hub import FakeHub, Repo, files_of

# Like Lightricks/LTX-2: diffusers layout, but a dev transformer, and single-file checkpoints beside it.
BASE = "ltxserve-test/ltx-base"
# Like rootonchair/LTX-2-19b-distilled: the distilled transformer and connectors.
DISTILLED = "ltxserve-test/ltx-distilled"
# Like dg845/LTX-2.3-Spatial-Upsampler-Diffusers: an upsample pipeline, a VAE beside the upsampler.
UPSAMPLER = "ltxserve-test/ltx-upsampler"
TOKEN = "hf_test0123456789abcdef"
MODEL = "tiny-test"


@pytest.fixture(scope="session")
def tiny_files(data_dir) -> dict[str, bytes]:
    return files_of(ensure_tiny_model(data_dir / "models"))


def published(tiny: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """The tiny model's files over three repositories, with what the fast path must not fetch beside them."""

    def under(*folders: str) -> dict[str, bytes]:
        return {path: data for path, data in tiny.items() if path.split("/")[0] in folders}

    # Listed in model_index.json and present in the repository, as diffusers/LTX-2.3-Distilled-Diffusers has it,
    # but not part of the fast path.
    index = json.loads(tiny["model_index.json"]) | {"processor": ["transformers", "Gemma3Processor"]}
    return {
        BASE: {
            **under("vae", "audio_vae", "vocoder", "scheduler", "text_encoder", "tokenizer"),
            "model_index.json": tiny["model_index.json"],
            "transformer/config.json": tiny["transformer/config.json"],
            "transformer/diffusion_pytorch_model.safetensors": b"the dev transformer, not the distilled one",
            "text_encoder/diffusion_pytorch_model.safetensors": b"a stale duplicate of the text encoder",
            "ltx-2-19b-distilled.safetensors": b"an original single-file checkpoint",
            "README.md": b"# LTX-2\n",
            ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        },
        DISTILLED: {
            **under("transformer", "connectors"),
            "model_index.json": json.dumps(index, indent=2).encode(),
            "ltxserve.json": tiny["ltxserve.json"],
            "processor/tokenizer_config.json": tiny["tokenizer/tokenizer_config.json"],
        },
        UPSAMPLER: {
            **under("latent_upsampler", "vae"),
            "model_index.json": b'{"_class_name": "LTX2LatentUpsamplePipeline"}',
        },
    }


@pytest.fixture
def hub(tiny_files):
    hub = FakeHub({name: Repo(files) for name, files in published(tiny_files).items()}).start()
    yield hub
    hub.stop()


@pytest.fixture
def on_hub(hub, monkeypatch, tmp_path) -> FakeHub:
    """huggingface_hub in this process pointed at the stand-in, with a cache and a token file of the test's own."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token"))
    return hub


@pytest.fixture
def catalog_file(hub, tmp_path) -> Path:
    """The tiny model as a catalog entry: one repository pinned to a commit, as the built-in entries are."""
    base = {"repo": BASE, "revision": hub.repos[BASE].commit}
    parts = [
        {"folder": "", "repo": DISTILLED, "files": ["model_index.json", "ltxserve.json"], "license": "ltx-2"},
        {"folder": "transformer", "repo": DISTILLED, "license": "ltx-2"},
        {"folder": "connectors", "repo": DISTILLED, "license": "ltx-2"},
        *({"folder": folder, **base, "license": "ltx-2"} for folder in ("vae", "audio_vae", "vocoder", "scheduler")),
        {"folder": "text_encoder", **base, "license": "gemma-3"},
        {"folder": "tokenizer", **base, "license": "gemma-3"},
        {"folder": "latent_upsampler", "repo": UPSAMPLER, "license": "ltx-2", "gated": True},
    ]
    path = tmp_path / "catalog.json"
    model = {"name": MODEL, "release": "2.3", "summary": "the tiny model", "parts": parts}
    path.write_text(json.dumps({"models": [model]}))
    return path
