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

# The fast tier, `python -m pytest -m "not slow"`, leaves these out (node ids, or their beginnings): the
# longest clips, the crash, concurrency, fuzzing and Ray fleet runs, and the second and later tests of a
# behaviour whose first is in the tier. What stays touches every module of src/ltxserve in under 5 minutes
# on 2 cores; CI runs everything.
SLOW = (
    "tests/fleet/test_fleet.py::test_scales_from_zero_to_two_survives_an_api_restart_and_returns_to_zero",
    "tests/fleet/test_fleet.py::test_a_drained_node_takes_no_new_job_and_charges_once",
    "tests/fleet/test_fleet.py::test_the_cluster_refuses_a_client_without_its_token",
    "tests/fleet/test_fleet.py::test_a_node_killed_mid_denoise_loses_nothing",
    "tests/api/test_openapi_fuzz.py",
    "tests/api/test_v2_crash.py",
    "tests/api/test_v1_concurrency.py",
    "tests/bench/test_gpu_pipeline.py",
    "tests/engine/test_speed.py::test_compiled_transformer_blocks_give_the_same_latents",
    "tests/engine/test_speed.py::test_4k_refines_at_half_size_and_upsamples_once_more",
    "tests/engine/test_speed.py::test_overlapped_encoding_writes_the_same_file_as_encoding_in_turn",
    "tests/engine/test_generate.py::test_every_resolution_and_duration_has_exact_size_rate_length_and_audio[4k",
    "tests/engine/test_generate.py::test_every_resolution_and_duration_has_exact_size_rate_length_and_audio[2k",
    "tests/engine/test_generate.py::test_every_resolution_and_duration_has_exact_size_rate_length_and_audio[1080p-8]",
    "tests/engine/test_generate.py::test_every_resolution_and_duration_has_exact_size_rate_length_and_audio[1080p-10]",
    "tests/engine/test_generate.py::test_frames_stay_in_step_with_a_one_tile_decode_of_the_same_seed",
    "tests/engine/test_generate.py::test_image_to_video_changes_the_output_and_depends_on_the_image",
    "tests/engine/test_generate.py::test_same_seed_gives_identical_bytes_and_another_seed_differs",
    "tests/engine/test_generate.py::test_aspect_ratios_and_50_fps",
    "tests/engine/test_generate.py::test_a_seed_is_chosen_and_reported_when_none_is_given",
    "tests/api/test_v1_failures.py::test_a_sync_client_that_leaves_is_not_charged_and_its_job_stops",
    "tests/api/test_v1_failures.py::test_a_request_sent_while_the_embedded_worker_loads_waits_for_it",
    "tests/api/test_v1_failures.py::test_a_generation_that_fails_on_our_side_is_500_logged_and_not_billed",
    "tests/api/test_v1_failures.py::test_a_worker_killed_mid_job_is_502_and_not_billed",
    "tests/api/test_v1_failures.py::test_a_generation_over_the_sync_timeout_is_504_and_not_billed",
    "tests/api/test_v2_requests.py::test_results_expire_and_are_deleted_and_then_the_records_too",
    "tests/api/test_v2_requests.py::test_a_failed_request_is_422_with_its_error_and_not_billed",
    "tests/api/test_v2_requests.py::test_a_key_sees_only_its_own_requests",
    "tests/api/test_v2_requests.py::test_status_shows_queue_position_and_progress_and_cancel_while_queued_is_not_billed",
    "tests/browser/test_playground.py::test_generate_watch_the_progress_play_the_clip_and_find_it_in_the_history",
    "tests/browser/test_playground.py::test_a_queued_image_to_video_request_shows_its_turn_and_is_canceled_unbilled",
    "tests/workers/test_supervisor.py::test_the_embedded_worker_is_a_process_of_its_own_and_is_replaced_when_it_dies",
    "tests/workers/test_supervisor.py::test_a_worker_rides_out_a_database_restart",
    "tests/api/test_event_feed.py::test_a_stream_hears_every_change_a_worker_process_makes",
    "tests/api/test_event_feed.py::test_polls_and_sync_waits_see_the_end_promptly[postgresql]",
    "tests/client/test_client.py::test_a_turn_moved_through_another_api_server_is_told_at_once_on_postgresql",
    "tests/client/test_client.py::test_a_download_cut_mid_way_resumes_to_identical_bytes",
    "tests/client/test_client.py::test_a_dropped_event_stream_resumes_where_it_stopped",
    "tests/client/test_client.py::test_wait_reports_the_queue_then_each_stage_in_order",
    "tests/cli/test_generate_command.py::test_generate_from_a_local_image_file_without_audio",
    "tests/cli/test_generate_command.py::test_an_unknown_weights_directory_is_reported",
    "tests/api/test_hostile_input.py::test_the_public_url_setting_is_the_base_of_every_url",
    "tests/api/test_hostile_input.py::test_a_non_ascii_signature_is_a_forged_link_not_an_error",
    "tests/api/test_v1_generate.py::test_slow_image_hosts_do_not_hold_up_other_requests",
    "tests/api/test_v1_generate.py::test_the_seed_header_reproduces_the_clip",
    "tests/api/test_v1_generate.py::test_generations_at_once_over_the_key_limit_are_429",
    "tests/test_install.py",
    "tests/api/test_v2_s3.py",
    "tests/api/test_v2_requests.py::test_webhook_is_signed_and_retried_until_it_is_taken",
    "tests/engine/test_loader.py::test_a_saved_directory_and_the_builtin_tiny_give_the_same_clip",
    "tests/engine/test_generate.py::test_no_audio_stream_when_audio_is_off",
    "tests/cli/test_generate_command.py::test_generate_writes_the_requested_clip",
    "tests/api/test_event_feed.py::test_streams_on_a_queued_request_all_end_when_it_is_canceled[postgresql]",
    "tests/api/test_event_feed.py::test_polls_and_sync_waits_see_the_end_promptly[sqlite]",
    "tests/api/test_admin.py::test_the_keys_commands",
    "tests/client/test_client.py::test_a_submit_whose_answer_was_lost_is_retried_and_charged_once",
    "tests/api/test_v2_requests.py::test_cancel_while_running_stops_the_worker_and_is_not_billed",
    "tests/api/test_v2_requests.py::test_the_same_idempotency_key_is_one_request_and_one_charge",
    "tests/api/test_v1_generate.py::test_a_request_that_cannot_be_accepted_is_refused_before_its_image_is_fetched",
    "tests/browser/test_playground.py::test_refusals_are_shown_in_the_servers_words",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


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
