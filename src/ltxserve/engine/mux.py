"""Streaming MP4 writer: H.264 yuv420p video and AAC audio, muxed by PyAV (FFmpeg's libraries).

Frames are written as they are decoded, so memory holds one chunk of frames, never the clip. Audio is
interleaved with the video by timestamp, so a player can start before the file has fully arrived,
and `+faststart` puts the index at the front for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

# AAC codes 1024 samples a frame.
_AAC_FRAME = 1024


@dataclass(frozen=True)
class EncodeSettings:
    crf: int = 18
    preset: str = "veryfast"
    audio_bitrate: int = 192_000
    threads: int = 0  # 0: FFmpeg picks


class Mp4Writer:
    """Write frames of the model's size; each is cropped to `crop_box` and scaled to the output size."""

    def __init__(
        self,
        target: str | Path | BinaryIO,
        *,
        width: int,
        height: int,
        fps: int,
        crop_box: tuple[int, int, int, int] | None = None,
        audio: np.ndarray | None = None,
        sample_rate: int = 0,
        settings: EncodeSettings = EncodeSettings(),
    ) -> None:
        self._container = av.open(target, mode="w", format="mp4", options={"movflags": "+faststart"})
        self._width, self._height, self._fps = width, height, fps
        self._crop_box = crop_box
        self._video = self._container.add_stream("libx264", rate=Fraction(fps))
        self._video.width = width
        self._video.height = height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        self._video.thread_count = settings.threads
        self._video.options = {"crf": str(settings.crf), "preset": settings.preset}
        self._frames = 0
        self._audio_stream = None
        self._audio = audio
        self._audio_written = 0
        self._sample_rate = sample_rate
        if audio is not None:
            if audio.ndim != 2 or audio.shape[0] != 2:
                raise ValueError(f"audio must be stereo [2, samples], got shape {audio.shape}")
            self._audio_stream = self._container.add_stream("aac", rate=sample_rate, layout="stereo")
            self._audio_stream.bit_rate = settings.audio_bitrate
            self._audio_stream.time_base = Fraction(1, sample_rate)

    def write(self, frames: np.ndarray) -> None:
        """Append frames [f, H, W, 3] uint8 at the model's size."""
        if self._crop_box is not None:
            left, top, width, height = self._crop_box
            frames = frames[:, top : top + height, left : left + width]
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame = frame.reformat(
                width=self._width, height=self._height, format="yuv420p", interpolation="BICUBIC"
            )
            frame.pts = self._frames
            self._frames += 1
            self._container.mux(self._video.encode(frame))
        if self._audio_stream is not None:
            self._write_audio_until(self._frames * self._sample_rate // self._fps)

    def _write_audio_until(self, sample: int) -> None:
        assert self._audio is not None and self._audio_stream is not None, "only for a clip with sound"
        end = min(self._audio.shape[1], sample)
        # Whole AAC frames only, except the clip's tail.
        if end < self._audio.shape[1]:
            end -= (end - self._audio_written) % _AAC_FRAME
        while self._audio_written < end:
            stop = min(end, self._audio_written + _AAC_FRAME)
            block = np.ascontiguousarray(self._audio[:, self._audio_written : stop], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = self._sample_rate
            frame.pts = self._audio_written
            self._audio_written = stop
            self._container.mux(self._audio_stream.encode(frame))

    @property
    def frames_written(self) -> int:
        return self._frames

    def close(self) -> None:
        self._container.mux(self._video.encode(None))
        if self._audio is not None and self._audio_stream is not None:
            self._write_audio_until(self._audio.shape[1])
            self._container.mux(self._audio_stream.encode(None))
        self._container.close()

    def abort(self) -> None:
        self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
