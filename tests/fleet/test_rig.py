"""The cluster rig after a run killed before its clean-up. CI once failed so: the dead run's bridge kept the
subnet's route, and the new cluster's nodes could not reach the test's PostgreSQL (a connection timeout)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.fleet.cluster import RayCluster, sh

# A run that sets up its cluster's network, leaves a process on its head node and dies without cleaning up.
DEAD_RUN = """
import json, subprocess, sys
from pathlib import Path
from tests.fleet.cluster import RayCluster
cluster = RayCluster(Path(sys.argv[1]), workers=1)
cluster.start_network()
subprocess.Popen(["ip", "netns", "exec", cluster.head.name, "sleep", "300"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
names = [node.name for node in cluster.nodes]
print(json.dumps({"subnet": str(cluster.subnet), "bridge": cluster.bridge, "namespaces": names}))
"""


def reaches_the_test(cluster: RayCluster) -> bool:
    """Whether a process on the cluster's head node connects to a port the test listens on, on the bridge."""
    with socket.create_server((cluster.host_ip, 0)) as listener:
        port = listener.getsockname()[1]
        done = cluster.head.run(sys.executable, "-c", "import socket, sys; "
                                "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()",
                                cluster.host_ip, str(port), timeout=30)
        return done.returncode == 0


def dead(pid: int, timeout_s: float = 10) -> bool:
    """Whether the process ends (a zombie waiting for its new parent's reap counts) within the time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def links_and_namespaces() -> str:
    return sh("ip", "-o", "link", "show").stdout + sh("ip", "netns", "list").stdout


def test_a_dead_runs_leftovers_are_cleared_and_its_subnet_works_again(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", DEAD_RUN, str(tmp_path / "dead")], capture_output=True, text=True,
                          check=True, timeout=60, cwd=Path(__file__).parents[2])
    left = json.loads(done.stdout)
    orphan = int(sh("ip", "netns", "pids", left["namespaces"][0]).stdout.split()[0])
    cluster = RayCluster(tmp_path / "new", workers=1)
    try:
        assert dead(orphan)
        assert not any(name in links_and_namespaces() for name in [left["bridge"], *left["namespaces"]])
        assert str(cluster.subnet) == left["subnet"]
        cluster.start_network()
        assert reaches_the_test(cluster)
    finally:
        cluster.stop_network()


def test_a_live_runs_network_is_left_to_it(tmp_path: Path) -> None:
    live = RayCluster(tmp_path / "live", workers=0)
    live.start_network()
    try:
        cluster = RayCluster(tmp_path / "new", workers=0)
        try:
            assert live.head.name in links_and_namespaces()
            assert cluster.subnet != live.subnet
            cluster.start_network()
            assert reaches_the_test(cluster)
            assert reaches_the_test(live)
        finally:
            cluster.stop_network()
    finally:
        live.stop_network()
