"""Encode throughput and generation memory.

1. Frames per second of ltxserve's streamed MP4 writer (PyAV) against the `ffmpeg` command line
   encoding the same raw RGB frames with the same settings (libx264, same preset and CRF, yuv420p,
   +faststart), at 1080p and 4K. Runs alternate, and the table gives medians and their ratio.
2. Peak resident memory of a whole 4K 10 s generation against a 4K 6 s one with the tiny model, each
   in a fresh process: with streamed decoding and encoding the two should be close.

    python -m bench.encode [--repeats 3] [--frames 50] [--out bench/results/encode.json]

Needs the `ffmpeg` program for part 1 (Debian: apt-get install ffmpeg).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"1080p": (1920, 1080), "4k": (3840, 2160)}
FPS = 25


def _frames(width: int, height: int, count: int) -> list[np.ndarray]:
    """Moving gradients with texture: compressible like video, not like noise, and not trivially flat."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = rng.integers(0, 24, size=(height, width, 1), dtype=np.uint8)
    frames = []
    for index in range(count):
        shift = index * 8
        r = (x + shift) % 256
        g = (y + shift / 2) % 256
        b = ((x + y) / 4 + shift) % 256
        frames.append(np.ascontiguousarray(np.stack([r, g, b], -1).astype(np.uint8) + texture))
    return frames


def _encode_ours(frames, width, height, preset, crf, path) -> float:
    from ltxserve.engine.mux import EncodeSettings, Mp4Writer

    started = time.perf_counter()
    with Mp4Writer(path, width=width, height=height, fps=FPS, settings=EncodeSettings(crf=crf, preset=preset)) as w:
        for start in range(0, len(frames), 8):
            w.write(np.stack(frames[start : start + 8]))
    return time.perf_counter() - started


def _encode_ffmpeg(frames, width, height, preset, crf, path) -> float:
    command = [
        "ffmpeg", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "pipe:0",
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    for frame in frames:
        process.stdin.write(frame.data)
    process.stdin.close()
    if process.wait() != 0:
        raise RuntimeError("ffmpeg failed")
    return time.perf_counter() - started


def bench_encode(repeats: int, frame_count: int, preset: str, crf: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (width, height) in SIZES.items():
            frames = _frames(width, height, frame_count)
            ours, theirs = [], []
            for _ in range(repeats):
                ours.append(_encode_ours(frames, width, height, preset, crf, Path(tmp) / "ours.mp4"))
                theirs.append(_encode_ffmpeg(frames, width, height, preset, crf, Path(tmp) / "ffmpeg.mp4"))
            ours_fps = frame_count / statistics.median(ours)
            ffmpeg_fps = frame_count / statistics.median(theirs)
            rows.append(
                {
                    "resolution": name,
                    "frames": frame_count,
                    "ltxserve_fps": round(ours_fps, 2),
                    "ffmpeg_cli_fps": round(ffmpeg_fps, 2),
                    "ratio": round(ours_fps / ffmpeg_fps, 3),
                    "ltxserve_bytes": (Path(tmp) / "ours.mp4").stat().st_size,
                    "ffmpeg_bytes": (Path(tmp) / "ffmpeg.mp4").stat().st_size,
                }
            )
            del frames
    return rows


def _peak_rss_mb() -> float:
    """This process's own high-water mark. Not ru_maxrss: Linux carries that over fork and exec, so a
    child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_generate(resolution: str, duration: int, data_dir: str, preset: str) -> None:
    """Runs in a fresh process: one generation, then its own peak RSS on stdout."""
    from ltxserve.api.schemas import GenerationRequest
    from ltxserve.engine import EncodeSettings, Engine, EngineSettings

    settings = EngineSettings(encode=EncodeSettings(preset=preset))
    engine = Engine.load("tiny", cache_dir=Path(data_dir) / "models", device="cpu", settings=settings)
    loaded_rss = _peak_rss_mb()
    spec = GenerationRequest(prompt="a lighthouse in a storm", resolution=resolution, duration=duration, seed=1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        engine.generate(spec.to_order(price=0), Path(tmp) / "clip.mp4")
    print(json.dumps({"peak_rss_mb": _peak_rss_mb(), "after_load_rss_mb": loaded_rss,
                      "seconds": time.perf_counter() - started}))  # fmt: skip


def bench_memory(preset: str) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        for duration in (6, 10):
            # As a module, like every bench: run as a file, bench/queue.py would shadow the standard library's.
            done = subprocess.run(
                [sys.executable, "-m", "bench.encode", "--child", f"4k:{duration}:{data_dir}:{preset}"],
                capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                cwd=Path(__file__).resolve().parent.parent,
            )  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"request": f"4k {duration} s", **{k: round(v, 1) for k, v in result.items()}})
    return rows


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=False))]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=False)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encode.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        resolution, duration, data_dir, preset = args.child.split(":")
        _child_generate(resolution, int(duration), data_dir, preset)
        return
    if shutil.which("ffmpeg") is None:
        sys.exit("bench/encode.py needs the ffmpeg program (Debian: apt-get install ffmpeg)")

    # Memory first, while this process is still small: nothing of its own can leak into the children.
    memory_rows = bench_memory(args.preset)
    print("Peak RSS of one whole generation with the tiny model, fresh process each:")
    print(_table(memory_rows))
    ratio = memory_rows[1]["peak_rss_mb"] / memory_rows[0]["peak_rss_mb"]
    print(f"4k 10 s / 4k 6 s peak RSS: {ratio:.3f}")
    encode_rows = bench_encode(args.repeats, args.frames, args.preset, args.crf)
    print(f"\nEncode, libx264 preset {args.preset} crf {args.crf}, {args.frames} frames, median of {args.repeats}:")
    print(_table(encode_rows))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "encode": encode_rows,
        "memory": memory_rows,
        "rss_ratio_10s_over_6s": round(ratio, 3),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
