"""The fleet on a real Ray cluster: scale from zero and back, a node killed or drained mid-job, an API
restart, a sync request against a fleet at zero. Each request is charged once, whatever happens."""

from __future__ import annotations

import time

import requests

from tests.api.client import SMALL, generate, status, submit, wait_for, wait_for_progress
from tests.conftest import probe
from tests.fleet.conftest import DOWNSCALE_S, LEASE_S, Fleet


def _charged_once(fleet: Fleet, job_id: str) -> None:
    assert fleet.server.ledger_kinds(job_id) == ["reserve", "capture"]


def _download(fleet: Fleet, key: str, job_id: str) -> bytes:
    url = f"{fleet.server.base}/v2/requests/{job_id}/output"
    response = requests.get(url, headers={"x-api-key": key}, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    return response.content


def test_the_cluster_refuses_a_client_without_its_token(fleet: Fleet):
    code = f"import ray; ray.init(address='{fleet.cluster.address}', logging_level='ERROR'); print(ray.nodes())"
    assert fleet.cluster.ray("python", "-c", code, timeout=60).returncode == 0
    # With a wrong token the client retries for 20 s before it gives up; the GCS's answer comes at once.
    stranger = fleet.cluster.head.popen("python", "-c", code, env={**fleet.cluster.env, "RAY_AUTH_TOKEN": "0" * 32})
    try:
        deadline = time.monotonic() + 60
        for line in stranger.stdout:
            if "InvalidAuthToken" in line:
                break
            assert time.monotonic() < deadline, "no authentication error within 60 s"
        else:
            raise AssertionError(f"the client ended ({stranger.wait()}) without an authentication error")
    finally:
        stranger.kill()
        stranger.wait()


def test_a_sync_request_waits_for_the_first_replica(fleet: Fleet, tmp_path):
    assert fleet.status()["fleet"]["running"] == 0
    ready = requests.get(f"{fleet.server.base}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["workers"] == 0
    assert ready.json()["fleets"][0]["reporting"] is True

    key = fleet.server.create_key()
    response = generate(fleet.server.base, key, SMALL, timeout=300)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    (tmp_path / "clip.mp4").write_bytes(response.content)
    clip = probe(tmp_path / "clip.mp4")
    assert abs(clip.video_seconds - 6) < 0.1 and clip.audio_codec == "aac"
    _charged_once(fleet, response.headers["x-request-id"])
    metrics = requests.get(f"{fleet.server.base}/metrics", timeout=30).text
    assert "ltxserve_cold_start_seconds_count 1.0" in metrics


def test_scales_from_zero_to_two_survives_an_api_restart_and_returns_to_zero(fleet: Fleet):
    fleet.wait_for_replicas(0, timeout_s=DOWNSCALE_S * 4 + 30)
    key = fleet.server.create_key(concurrency_limit=3)
    ids = [submit(fleet.server.base, key, {**SMALL, "seed": n}).json()["request_id"] for n in range(3)]

    # The queue asks for 3 replicas; max-replicas caps the fleet at 2.
    running = fleet.wait_for_replicas(2)
    assert running["max_replicas"] == 2
    # The API server dies and comes back while the fleet works: the job store keeps every request.
    fleet.server.process.kill()
    fleet.server.start()

    bodies = [wait_for(fleet.server.base, key, job_id, "COMPLETED", "FAILED", timeout_s=300) for job_id in ids]
    assert [body["status"] for body in bodies] == ["COMPLETED"] * 3, bodies
    for job_id in ids:
        assert len(_download(fleet, key, job_id)) > 10_000
        _charged_once(fleet, job_id)
    # Both nodes worked: Ray put one replica on each GPU.
    nodes = {fleet.node_of(fleet.claims.owners(job_id)[0]).name for job_id in ids}
    assert len(nodes) == 2

    # Idle, the fleet goes back to zero, one replica per downscale delay.
    fleet.wait_for_replicas(0, timeout_s=DOWNSCALE_S * 4 + 30)
    metrics = requests.get(f"{fleet.server.base}/metrics", timeout=30).text
    assert 'ltxserve_fleet_replicas{fleet="ltxserve-fleet",state="target"} 0.0' in metrics


def test_a_node_killed_mid_denoise_loses_nothing(fleet: Fleet):
    key = fleet.server.create_key()
    job_id = submit(fleet.server.base, key, SMALL).json()["request_id"]
    wait_for_progress(fleet.server.base, key, job_id, past=("encode_prompt",), timeout_s=180)
    first = fleet.node_of(fleet.claims.owners(job_id)[0])

    first.kill()  # every process of that "host": its raylet, the replica, the worker loop
    try:
        body = wait_for(fleet.server.base, key, job_id, "COMPLETED", "FAILED", timeout_s=LEASE_S + 240)
        assert body["status"] == "COMPLETED", body
        owners = fleet.claims.owners(job_id)
        assert len(owners) == 2 and fleet.node_of(owners[1]) is not first
        assert body["metrics"]["attempts"] == 2
        _charged_once(fleet, job_id)
        _download(fleet, key, job_id)
    finally:
        fleet.cluster.start_worker(first)
        fleet.cluster.wait_for_nodes(3)
        fleet.node_ids.update(fleet.cluster.node_ids())


def test_a_drained_node_takes_no_new_job_and_charges_once(fleet: Fleet):
    key = fleet.server.create_key(concurrency_limit=2)
    first_id = submit(fleet.server.base, key, {**SMALL, "duration": 10}).json()["request_id"]
    wait_for_progress(fleet.server.base, key, first_id, past=("encode_prompt",), timeout_s=180)
    draining = fleet.node_of(fleet.claims.owners(first_id)[0])

    # A preemption notice: Ray marks the node draining; whoever preempts kills it at the deadline.
    drained = fleet.cluster.ray(
        "ray", "drain-node", "--address", fleet.cluster.address, "--node-id", fleet.node_ids[draining.ip],
        "--reason", "DRAIN_NODE_REASON_PREEMPTION", "--reason-message", "spot instance reclaimed",
        "--deadline-remaining-seconds", "60",
    )
    assert drained.returncode == 0, drained.stderr
    fleet.wait_for_draining(1)
    # Said while the job runs, not after it: the policy must start a replica elsewhere for what queues next.
    assert status(fleet.server.base, key, first_id).json()["status"] == "PROCESSING"
    second_id = submit(fleet.server.base, key, {**SMALL, "seed": 7}).json()["request_id"]
    second = wait_for(fleet.server.base, key, second_id, "COMPLETED", "FAILED", timeout_s=300)
    first = wait_for(fleet.server.base, key, first_id, "COMPLETED", "FAILED", timeout_s=300)

    assert first["status"] == second["status"] == "COMPLETED", (first, second)
    second_owners = fleet.claims.owners(second_id)
    assert second_owners and all(fleet.node_of(owner) is not draining for owner in second_owners)
    # The job in hand finished on the draining node, or came back through its lease and ran elsewhere.
    assert all(fleet.node_of(owner) is not draining for owner in fleet.claims.owners(first_id)[1:])
    for job_id in (first_id, second_id):
        _charged_once(fleet, job_id)
