from __future__ import annotations

import os

# Before anything imports huggingface_hub: every test runs offline, and proves it (see _no_remote_connections).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from ltxserve.engine import EncodeSettings, Engine, EngineSettings

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths stay on this machine
    host = address[0]
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_remote_connections(monkeypatch):
    """Fail any test whose code tries to open a connection anywhere but this machine's loopback.

    The check sits under every client library, so it holds even if ltxserve's own address checks were
    broken: the connection is refused before a packet leaves, and the test fails.
    """
    attempts: list = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded(real):
        def connect(self, address):
            if not _is_loopback(address):
                attempts.append(address)
                raise ConnectionRefusedError(f"test guard: connection to {address} blocked")
            return real(self, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    yield attempts
    assert not attempts, f"the code tried to connect outside loopback: {attempts}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ltxserve-data")


# Tests encode many clips on two cores: the fastest x264 preset keeps them quick and changes no
# property the tests check.
TEST_ENGINE_SETTINGS = EngineSettings(encode=EncodeSettings(preset="ultrafast"))


@pytest.fixture(scope="session")
def engine(data_dir) -> Engine:
    return Engine.load("tiny", cache_dir=data_dir / "models", device="cpu", settings=TEST_ENGINE_SETTINGS)


@dataclass
class Probe:
    video_codec: str
    width: int
    height: int
    pix_fmt: str
    fps: float
    frames: int
    video_seconds: float
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None
    audio_seconds: float | None
    audio_samples: int | None
    streams: int


def probe(path: Path) -> Probe:
    """Read what a player would see: stream parameters, and frames and samples counted by decoding."""
    with av.open(str(path)) as container:
        videos = [s for s in container.streams if s.type == "video"]
        audios = [s for s in container.streams if s.type == "audio"]
        assert len(videos) == 1, f"expected one video stream, found {len(videos)}"
        assert len(audios) <= 1, f"expected at most one audio stream, found {len(audios)}"
        video = videos[0]
        frames = sum(1 for _ in container.decode(video=0))
        info = {
            "video_codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "pix_fmt": video.codec_context.pix_fmt,
            "fps": float(video.average_rate),
            "frames": frames,
            "video_seconds": float(video.duration * video.time_base),
            "streams": len(container.streams),
        }
    audio_info = dict.fromkeys(("audio_codec", "audio_rate", "audio_channels", "audio_seconds", "audio_samples"))
    if audios:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio=0))
            audio_info = {
                "audio_codec": stream.codec_context.name,
                "audio_rate": stream.codec_context.sample_rate,
                "audio_channels": stream.codec_context.channels,
                "audio_seconds": float(stream.duration * stream.time_base),
                "audio_samples": samples,
            }
    return Probe(**info, **audio_info)


@pytest.fixture(scope="session")
def tiny_models(data_dir) -> Path:
    """The built-in tiny model, built once and shared by every server the tests start."""
    from ltxserve.engine.tiny import ensure_tiny_model

    models = data_dir / "models"
    ensure_tiny_model(models)
    return models


@pytest.fixture
def pg_url():
    """A fresh schema in the local PostgreSQL's `test` database, dropped after the test."""
    from tests.servers import PgSchema

    schema = PgSchema()
    yield schema.url
    schema.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """The job store's database, migrated: each test that takes it runs on both."""
    from ltxserve.db import Database

    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    else:
        database = Database(request.getfixturevalue("pg_url"))
    database.migrate()
    yield database
    database.dispose()


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-compatible server (moto's, from PyPI) on a loopback port, with one bucket."""
    import subprocess
    import sys
    import time

    import boto3
    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("s3") / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            # Its first answer can take seconds (moto imports its services lazily): a slow answer is a wait too.
            requests.get(endpoint, timeout=10)
            break
        except (requests.ConnectionError, requests.Timeout):
            assert time.monotonic() < deadline and process.poll() is None, "the S3 server did not start"
            time.sleep(0.1)
    # Static credentials: without them boto3 would look for an instance role on the network.
    env = {"AWS_ACCESS_KEY_ID": "ltxserve-test", "AWS_SECRET_ACCESS_KEY": "ltxserve-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="ltxserve-results")
    yield S3Server(endpoint, "ltxserve-results", env)
    process.terminate()
    process.wait(30)
    log.close()
