"""`pull` against the stand-in Hub: huggingface_hub's real download code, the tiny model's files."""

from __future__ import annotations

import hashlib
import json

import pytest

from ltxserve.engine import Engine
from ltxserve.order import Order
from ltxserve.weights.catalog import load_catalog
from ltxserve.weights.pull import PullError, local_parts, plan, pull

from ..conftest import TEST_ENGINE_SETTINGS, probe
from .conftest import BASE, DISTILLED, MODEL, TOKEN, UPSAMPLER
from .hub import files_of


def pull_tiny(catalog_file, target):
    return pull(plan(load_catalog(catalog_file)[MODEL]), target)


def weights_in(directory) -> dict[str, bytes]:
    return {path: data for path, data in files_of(directory).items() if not path.startswith(".cache/")}


def downloads(hub) -> list:
    """The requests that fetched a file's bytes (not its metadata)."""
    fetched = ("/resolve/", "/cdn/")
    return [seen for seen in hub.requests if seen.method == "GET" and any(part in seen.path for part in fetched)]


def test_the_pulled_directory_is_the_model_and_generates_a_clip(on_hub, catalog_file, tiny_files, tmp_path):
    target = pull_tiny(catalog_file, tmp_path / "weights")

    # Exactly the model's files, byte for byte, gathered from three repositories: none of the dev transformer,
    # the stale text encoder copy, the single-file checkpoint, the processor or the upsampler repository's VAE.
    # model_index.json is the model's own again: the processor its repository lists is marked absent.
    assert json.loads(on_hub.repos[DISTILLED].files["model_index.json"])["processor"][0] is not None
    assert weights_in(target) == tiny_files

    engine = Engine.load(str(target), cache_dir=tmp_path, device="cpu", settings=TEST_ENGINE_SETTINGS)
    spec = Order(prompt="waves on a pebble beach", width=640, height=352, fps=25, num_frames=25, seed=3)
    engine.generate(spec, tmp_path / "clip.mp4")
    clip = probe(tmp_path / "clip.mp4")
    assert (clip.width, clip.height, clip.frames, clip.audio_codec) == (640, 352, 25, "aac")


def test_a_connection_lost_mid_file_is_resumed_and_the_file_is_whole(
    on_hub, catalog_file, tiny_files, monkeypatch, tmp_path
):
    from huggingface_hub import constants

    # huggingface_hub writes what it receives in 10 MB chunks and resumes after the last one written; the tiny
    # model's files are smaller than one, so smaller chunks put the cut after written data, as in a real file.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    data = tiny_files["vocoder/diffusion_pytorch_model.safetensors"]
    sha256 = hashlib.sha256(data).hexdigest()
    on_hub.cut_once.add(sha256)

    target = pull_tiny(catalog_file, tmp_path / "weights")

    assert not on_hub.cut_once, "the stand-in never cut the download"
    assert (target / "vocoder" / "diffusion_pytorch_model.safetensors").read_bytes() == data
    first, resumed = (seen.range for seen in downloads(on_hub) if seen.path == f"/cdn/{sha256}")
    assert first is None
    assert resumed is not None and resumed.endswith("-")
    assert 0 < int(resumed.removeprefix("bytes=").removesuffix("-")) <= len(data) // 2


def test_a_second_pull_fetches_nothing_again(on_hub, catalog_file, tmp_path):
    target = pull_tiny(catalog_file, tmp_path / "weights")
    before = weights_in(target)
    on_hub.requests.clear()

    pull_tiny(catalog_file, target)

    assert downloads(on_hub) == []
    assert weights_in(target) == before


def test_a_gated_repository_needs_hf_token(on_hub, catalog_file, monkeypatch, tmp_path):
    on_hub.repos[UPSAMPLER].token = TOKEN
    target = tmp_path / "weights"

    with pytest.raises(PullError) as refused:
        pull_tiny(catalog_file, target)
    message = str(refused.value)
    assert UPSAMPLER in message and "gated" in message and "HF_TOKEN" in message
    # Refused before anything was downloaded, from any repository.
    assert downloads(on_hub) == []
    assert not target.exists()

    monkeypatch.setenv("HF_TOKEN", "hf_someone_else")
    with pytest.raises(PullError, match="has no access yet"):
        pull_tiny(catalog_file, target)

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    on_hub.requests.clear()
    pull_tiny(catalog_file, target)
    gated = [seen for seen in on_hub.requests if seen.path.startswith(f"/{UPSAMPLER}/resolve/")]
    assert gated and {seen.authorization for seen in gated} == {f"Bearer {TOKEN}"}
    assert all(held.present for held in local_parts(load_catalog(catalog_file)[MODEL], target).values())


def test_a_catalog_entry_the_repository_no_longer_matches_is_refused_by_name(on_hub, catalog_file, tmp_path):
    del on_hub.repos[DISTILLED].files["connectors/diffusion_pytorch_model.safetensors"]
    del on_hub.repos[DISTILLED].files["connectors/config.json"]

    with pytest.raises(PullError, match=rf"{DISTILLED}@main has no files for connectors"):
        pull_tiny(catalog_file, tmp_path / "weights")
    assert downloads(on_hub) == []


def test_an_unknown_repository_or_revision_is_named(on_hub, catalog_file, tmp_path):
    # The catalog pins BASE to a commit: a new commit leaves that revision in the past (the stand-in keeps one).
    on_hub.repos[BASE].files["README.md"] = b"# LTX-2, updated\n"
    with pytest.raises(PullError, match=rf"{BASE} has no revision '[0-9a-f]{{40}}'"):
        pull_tiny(catalog_file, tmp_path / "weights")

    on_hub.repos["ltxserve-test/moved"] = on_hub.repos.pop(BASE)
    with pytest.raises(PullError, match=rf"{BASE} was not found at {on_hub.url}"):
        pull_tiny(catalog_file, tmp_path / "weights")
