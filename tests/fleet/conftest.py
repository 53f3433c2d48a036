"""One Ray cluster for the module (a head and two GPU worker nodes in namespaces of their own), the fleet
deployed on it with `ltxserve fleet deploy` as the README says, and an API server with no worker of its own."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from ltxserve.db import Database, Job
from tests.fleet.cluster import BridgedPostgres, Node, RayCluster, replica_environment
from tests.servers import Server

# Short enough for a test: a replica idle for DOWNSCALE_S is stopped, a dead one's job returns after LEASE_S.
DOWNSCALE_S = 6
LEASE_S = 6
FLEET_SETTINGS = {"lease_s": str(LEASE_S), "heartbeat_s": "1.5", "worker_poll_s": "0.5",
                  "video_preset": "ultrafast"}


class ClaimWatcher:
    """Every worker that held each job's lease, seen by polling the job store (the fleet's replicas log to
    Ray's files, not to the test)."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self._owners: dict[str, list[str]] = defaultdict(list)
        self._polling = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self._poll()

    def _poll(self) -> None:
        with self._polling, self.db.read() as session:
            held = session.execute(select(Job.id, Job.lease_owner).where(Job.lease_owner.is_not(None))).all()
            for job_id, owner in held:
                if not self._owners[job_id] or self._owners[job_id][-1] != owner:
                    self._owners[job_id].append(owner)

    def owners(self, job_id: str) -> list[str]:
        """The job's holders so far, its present one included: the test reads it at once rather than waiting
        for the watcher's next turn, which a busy machine can delay past the moment the test asks."""
        self._poll()
        with self._polling:
            return list(self._owners[job_id])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.db.dispose()


@dataclass
class Fleet:
    cluster: RayCluster
    server: Server
    claims: ClaimWatcher
    node_ids: dict[str, str] = field(default_factory=dict)  # Ray's node id by IP

    def node_of(self, worker_id: str) -> Node:
        """The node a replica's worker runs on: its id starts with `ray-` and the node's id."""
        for node in self.cluster.workers:
            if worker_id.startswith(f"ray-{self.node_ids[node.ip][:12]}-"):
                return node
        raise LookupError(worker_id)

    def status(self) -> dict:
        import json

        return json.loads(self.server.cli("fleet", "status", "--json"))

    def wait_for_draining(self, count: int, timeout_s: float = 30) -> None:
        """Until `count` replicas have seen their node drain and stopped claiming."""
        deadline = time.monotonic() + timeout_s
        while (fleet := self.status()["fleet"])["draining"] != count:
            assert time.monotonic() < deadline, f"not {count} replicas draining after {timeout_s} s: {fleet}"
            time.sleep(0.2)

    def wait_for_replicas(self, running: int, timeout_s: float = 120) -> dict:
        """Until the job store sees `running` replicas live and Ray's target agrees."""
        deadline = time.monotonic() + timeout_s
        while True:
            fleet = self.status()["fleet"]
            if fleet["running"] == running and fleet["target"] == running and fleet["starting"] == 0:
                return fleet
            assert time.monotonic() < deadline, f"not {running} replicas after {timeout_s} s: {fleet}"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, tiny_models) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    cluster = RayCluster(root / "cluster")
    (root / "cluster").mkdir()
    postgres = None
    server = None
    claims = None
    try:
        cluster.start()
        postgres = BridgedPostgres(cluster)  # after the bridge exists: it listens on it
        postgres.start()
        server = Server(root / "api", tiny_models, {**FLEET_SETTINGS, "database_url": postgres.url,
                                                    "embedded_workers": "0"})
        replica_env = {**replica_environment(server.env, postgres.bridge_url),
                       "LTXSERVE_RESULTS_DIR": str(server.root / "results")}
        deployed = cluster.ltxserve(
            "fleet", "deploy", "--ray-address", cluster.address, "--max-replicas", "2", "--cpus-per-replica", "1",
            "--downscale-delay-s", str(DOWNSCALE_S), "--grace-period-s", "60", env=replica_env, timeout=180,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        server.settings["results_dir"] = str(server.root / "results")
        server.start()
        claims = ClaimWatcher(postgres.url)
        yield Fleet(cluster, server, claims, cluster.node_ids())
    finally:
        if claims is not None:
            claims.stop()
        if server is not None:
            server.stop()
        cluster.stop()
        if postgres is not None:
            postgres.remove()
