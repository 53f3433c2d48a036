"""The engine end to end with the tiny model: every output property checked on the produced file."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from ltxserve.api.schemas import GenerationRequest
from ltxserve.engine import Engine, Progress
from ltxserve.order import ImageInput, Order

from ..conftest import probe

SIZES = {"1080p": (1920, 1080), "2k": (2560, 1440), "4k": (3840, 2160)}


def _render(engine, tmp_path, name="clip.mp4", progress=None, image=None, **fields):
    request = GenerationRequest(prompt=fields.pop("prompt", "a red fox running through snow"), **fields)
    first = ImageInput("image", image.width, image.height) if image is not None else None
    spec = request.to_order(price=0, image=first)
    path = tmp_path / name
    result = engine.generate(spec, path, progress=progress, images={"image": image} if image is not None else None)
    return path, result


def _assert_clip(path, width, height, fps, seconds, audio=True):
    info = probe(path)
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height) == (width, height)
    assert info.fps == fps
    assert info.frames == seconds * fps
    assert info.video_seconds == pytest.approx(seconds, abs=1e-6)
    frame = 1 / fps
    if audio:
        assert info.streams == 2
        assert info.audio_codec == "aac"
        assert info.audio_channels == 2
        assert info.audio_rate == 48000  # LTX-2.3's vocoder, as the tiny model's
        assert abs(info.audio_seconds - info.video_seconds) <= frame
        assert abs(info.audio_samples / info.audio_rate - info.video_seconds) <= frame
    else:
        assert info.streams == 1
        assert info.audio_codec is None


@pytest.mark.parametrize("duration", [6, 8, 10])
@pytest.mark.parametrize("resolution", ["1080p", "2k", "4k"])
def test_every_resolution_and_duration_has_exact_size_rate_length_and_audio(engine, tmp_path, resolution, duration):
    path, result = _render(engine, tmp_path, resolution=resolution, duration=duration, seed=7)
    width, height = SIZES[resolution]
    _assert_clip(path, width, height, 25, duration)
    assert (result.width, result.height, result.num_frames) == (width, height, duration * 25)
    assert result.audio_sample_rate == 48000


@pytest.mark.parametrize(
    ("aspect_ratio", "fps", "size"),
    [("9:16", 25, (1080, 1920)), ("1:1", 25, (1080, 1080)), ("16:9", 50, (1920, 1080))],
)
def test_aspect_ratios_and_50_fps(engine, tmp_path, aspect_ratio, fps, size):
    path, _ = _render(engine, tmp_path, resolution="1080p", duration=6, aspect_ratio=aspect_ratio, fps=fps, seed=1)
    _assert_clip(path, *size, fps, 6)


def test_no_audio_stream_when_audio_is_off(engine, tmp_path):
    path, result = _render(engine, tmp_path, resolution="1080p", duration=6, generate_audio=False, seed=1)
    _assert_clip(path, 1920, 1080, 25, 6, audio=False)
    assert result.audio_sample_rate == 0


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_identical_bytes_and_another_seed_differs(engine, tmp_path):
    first, _ = _render(engine, tmp_path, "a.mp4", resolution="1080p", duration=6, seed=42)
    again, _ = _render(engine, tmp_path, "b.mp4", resolution="1080p", duration=6, seed=42)
    other, _ = _render(engine, tmp_path, "c.mp4", resolution="1080p", duration=6, seed=43)
    assert _digest(first) == _digest(again)
    assert _digest(first) != _digest(other)


def test_a_seed_is_chosen_and_reported_when_none_is_given(engine, tmp_path):
    _, first = _render(engine, tmp_path, "a.mp4", resolution="1080p", duration=6)
    _, second = _render(engine, tmp_path, "b.mp4", resolution="1080p", duration=6)
    assert 0 <= first.seed < 2**32
    assert first.seed != second.seed


def _first_frame(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


def _gradient(flip: bool) -> Image.Image:
    x = np.linspace(0, 255, 640, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (360, 1)), np.tile(x[::-1], (360, 1)), np.full((360, 640), 90, np.uint8)], -1)
    return Image.fromarray(rgb[:, ::-1] if flip else rgb)


def test_image_to_video_changes_the_output_and_depends_on_the_image(engine, tmp_path):
    plain, _ = _render(engine, tmp_path, "plain.mp4", resolution="1080p", duration=6, seed=5)
    with_a, _ = _render(engine, tmp_path, "a.mp4", resolution="1080p", duration=6, seed=5, image=_gradient(False))
    with_b, _ = _render(engine, tmp_path, "b.mp4", resolution="1080p", duration=6, seed=5, image=_gradient(True))
    _assert_clip(with_a, 1920, 1080, 25, 6)
    assert np.abs(_first_frame(plain) - _first_frame(with_a)).mean() > 1
    assert np.abs(_first_frame(with_a) - _first_frame(with_b)).mean() > 1


def test_progress_reports_every_stage_in_order_with_steps(engine, tmp_path):
    events: list[Progress] = []
    _, result = _render(engine, tmp_path, resolution="1080p", duration=6, seed=1, progress=events.append)
    stages = list(dict.fromkeys(event.stage for event in events))
    assert stages == ["encode_prompt", "stage1", "upsample", "stage2", "decode_audio", "decode_video"]
    assert [e.step for e in events if e.stage == "stage1"] == list(range(9))
    assert {e.total for e in events if e.stage == "stage1"} == {8}
    assert [e.step for e in events if e.stage == "stage2"] == [0, 1, 2, 3]
    decode = [e for e in events if e.stage == "decode_video"]
    assert decode[-1].step == decode[-1].total == 150
    assert set(result.timings) >= {"stage1", "stage2", "decode_video", "encode"}


def test_a_progress_callback_that_raises_aborts_and_leaves_no_file(engine, tmp_path):
    class Stop(Exception):
        pass

    def stop_in_stage2(event: Progress) -> None:
        if event.stage == "stage2" and event.step == 1:
            raise Stop

    path = tmp_path / "never.mp4"
    spec = Order(prompt="x", width=1920, height=1080, fps=25, num_frames=150, seed=1)
    with pytest.raises(Stop):
        engine.generate(spec, path, progress=stop_in_stage2)
    assert list(tmp_path.iterdir()) == []


def _small_frames(path) -> np.ndarray:
    """Every frame of the clip, shrunk to 240x135 so that two 10 s clips fit in memory side by side."""
    import av

    with av.open(str(path)) as container:
        return np.stack(
            [f.reformat(width=240, height=135).to_ndarray(format="rgb24") for f in container.decode(video=0)]
        ).astype(np.float32)


def test_frames_stay_in_step_with_a_one_tile_decode_of_the_same_seed(engine, tmp_path):
    """A 10 s clip crosses several decode seams; each of its frames must be the one-tile decode's frame of
    the same index, not its neighbour's (a tile seam once put every later frame one behind its audio)."""
    whole = Engine(engine.model, replace(engine.settings, decode_tile_frames=264, decode_stride_frames=256))
    tiled, _ = _render(engine, tmp_path, "tiled.mp4", resolution="1080p", duration=10, seed=3)
    one, _ = _render(whole, tmp_path, "one.mp4", resolution="1080p", duration=10, seed=3)
    tiled_frames, one_frames = _small_frames(tiled), _small_frames(one)
    assert len(tiled_frames) == len(one_frames) == 250

    same = np.abs(tiled_frames - one_frames).mean(axis=(1, 2, 3))
    behind = np.abs(tiled_frames[1:] - one_frames[:-1]).mean(axis=(1, 2, 3))
    ahead = np.abs(tiled_frames[:-1] - one_frames[1:]).mean(axis=(1, 2, 3))
    assert (same[1:] < behind).all() and (same[:-1] < ahead).all()
    # The last frame is the one-tile decode's last frame, not a copy of the frame before it.
    assert same[-1] < np.abs(one_frames[-1] - one_frames[-2]).mean()
