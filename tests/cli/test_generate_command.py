from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from ..conftest import probe


def _run(args, data_dir, cwd):
    env = {
        **os.environ,
        "LTXSERVE_DATA_DIR": str(data_dir),
        "LTXSERVE_VIDEO_PRESET": "ultrafast",
        "LTXSERVE_DEVICE": "cpu",
    }
    command = [sys.executable, "-c", "from ltxserve.cli.main import main; main()", *args]
    return subprocess.run(command, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_generate_writes_the_requested_clip(data_dir, engine, tmp_path):
    done = _run(
        ["generate", "a paper boat on a stream", "--duration", "6", "--resolution", "1080p", "--seed", "3",
         "-o", "boat.mp4"],
        data_dir,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    info = probe(tmp_path / "boat.mp4")
    assert (info.width, info.height, info.frames, info.audio_codec) == (1920, 1080, 150, "aac")
    assert "seed 3" in done.stderr


def test_generate_from_a_local_image_file_without_audio(data_dir, engine, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (250, 120, 0)).save(buffer, format="JPEG")
    (tmp_path / "first.jpg").write_bytes(buffer.getvalue())
    done = _run(
        ["generate", "the sun rises", "--duration", "6", "--resolution", "1080p", "--aspect-ratio", "9:16",
         "--image", "first.jpg", "--no-audio", "-o", "sun.mp4"],
        data_dir,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    info = probe(tmp_path / "sun.mp4")
    assert (info.width, info.height, info.streams, info.audio_codec) == (1080, 1920, 1, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "7"], "duration: must be 6, 8 or 10"),
        (["--resolution", "720p"], "resolution: must be '1080p', '2k' or '4k'"),
        (["--image", "http://169.254.169.254/latest/meta-data"], "image: URL refused"),
    ],
)
def test_invalid_options_exit_2_naming_the_field(data_dir, tmp_path, args, message):
    done = _run(["generate", "a fox", *args, "-o", "x.mp4"], data_dir, tmp_path)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.split())
    assert not (tmp_path / "x.mp4").exists()


def test_an_unknown_weights_directory_is_reported(data_dir, tmp_path):
    done = _run(["generate", "a fox", "--model", str(tmp_path), "-o", "x.mp4"], data_dir, tmp_path)
    assert done.returncode == 1
    assert "no model_index.json" in " ".join(done.stderr.split())


def test_the_console_script_is_installed():
    assert shutil.which("ltxserve", path=os.path.dirname(sys.executable)) is not None
