"""A real Ray cluster for the fleet tests: a head node and GPU worker nodes, each in a network namespace of
its own, joined by a bridge, so that each is a separate "host" (Ray rewrites 127.0.0.1 in the machine's own
namespace). The job store is a PostgreSQL of the test's own, on loopback for the test and on the bridge for
the nodes. Needs root (CI runs as root), as `ip netns` does.

Namespaces and links outlive the processes that made them: a run killed before its clean-up (kill -9, a
session's end) leaves its bridge up, with its address and its route. A new bridge on the same subnet then
loses its replies to the old one and every connection from a node to the test times out, and a dead run's
raylets go on taking CPU. So each cluster clears what dead runs left and takes a subnet no live interface uses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.workers.pg import BIN, PrivatePostgres

PREFIX = "ltx"  # of every namespace ("ltxh", "ltxw") and bridge ("ltxbr") a cluster makes
SUBNETS = ipaddress.ip_network("10.213.0.0/16")  # one /24 of it per cluster
RAY_PORT = 6390
VENV_BIN = Path(sys.executable).parent


def sh(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout)


def kill_all_in(namespace: str) -> None:
    for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
        subprocess.run(["kill", "-9", pid], check=False, capture_output=True)


def sweep_leftovers() -> None:
    """Clear what clusters of dead runs left: each namespace whose owner (the process that made it, named in
    it) is gone, with any process still in it (a raylet outlives its test), then the bridges and veths of
    clusters with no namespace left (the kernel drops a deleted namespace's veths only later)."""
    names = []
    for namespace in json.loads(sh("ip", "-j", "netns", "list").stdout or "[]"):
        name = namespace["name"]
        owner = re.fullmatch(rf"{PREFIX}[hw][0-9a-f]+-(\d+)", name)
        if owner and not Path(f"/proc/{owner[1]}").exists():
            kill_all_in(name)
            sh("ip", "netns", "del", name, check=False)
        else:
            names.append(name)
    for link in json.loads(sh("ip", "-j", "link", "show", "type", "bridge").stdout or "[]"):
        bridge = link["ifname"]
        tag = bridge.removeprefix(f"{PREFIX}br")
        if bridge.startswith(f"{PREFIX}br") and not any(name[len(PREFIX) + 1:].startswith(tag) for name in names):
            for port in json.loads(sh("ip", "-j", "link", "show", "master", bridge).stdout or "[]"):
                sh("ip", "link", "del", port["ifname"], check=False)
            sh("ip", "link", "del", bridge, check=False)


def free_subnet() -> ipaddress.IPv4Network:
    """The first /24 of SUBNETS that no address or route of this namespace touches."""
    taken = [ipaddress.ip_network(route["dst"]) for route in json.loads(sh("ip", "-j", "-4", "route", "show").stdout)
             if route["dst"] != "default"]
    taken += [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network
              for link in json.loads(sh("ip", "-j", "-4", "addr", "show").stdout) for a in link.get("addr_info", [])]
    for subnet in SUBNETS.subnets(new_prefix=24):
        if not any(subnet.overlaps(network) for network in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {SUBNETS}")


def replica_environment(server_env: dict[str, str], database_url: str) -> dict[str, str]:
    """What `ltxserve fleet deploy` is run with: an API server's settings (its data folder holds the model and
    the results, on the file system every "host" here shares), the database as the nodes reach it, and not
    what only the API server has (its port, its lack of an embedded worker)."""
    env = {key: value for key, value in server_env.items() if key.startswith(("LTXSERVE_", "HF_"))}
    for name in ("LTXSERVE_PORT", "LTXSERVE_EMBEDDED_WORKERS"):
        env.pop(name, None)
    return {**env, "LTXSERVE_DATABASE_URL": database_url}


class BridgedPostgres(PrivatePostgres):
    """Listens on loopback (the test) and on the cluster's bridge (the Ray nodes)."""

    def __init__(self, cluster: RayCluster) -> None:
        super().__init__()
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {cluster.subnet} trust\n")
        self.host_ip = cluster.host_ip
        self.bridge_url = self.url.replace("127.0.0.1", cluster.host_ip)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1,{self.host_ip} -c fsync=off"
        self._as_postgres(f"{BIN}/pg_ctl -D {self.data} -o '{options}' -l {self.dir}/log -w start")


@dataclass
class Node:
    name: str  # the namespace
    ip: str
    gpus: int
    logs: Path

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command on this "host"."""
        prefix = ["ip", "netns", "exec", self.name, "env", *(f"{k}={v}" for k, v in (env or {}).items())]
        return subprocess.run([*prefix, *args], check=False, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, env: dict[str, str]) -> subprocess.Popen:
        """A command on this "host", its output (both streams) to read as text."""
        prefix = ["ip", "netns", "exec", self.name, "env", *(f"{k}={v}" for k, v in env.items())]
        return subprocess.Popen([*prefix, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def kill(self) -> None:
        """`kill -9` every process of this host, as a machine that loses power."""
        kill_all_in(self.name)


class RayCluster:
    def __init__(self, root: Path, *, workers: int = 2, env: dict[str, str] | None = None) -> None:
        tag = uuid.uuid4().hex[:6]
        self.root = root
        self.bridge = f"{PREFIX}br{tag}"
        # Token authentication on, as the README asks of a real cluster: every node and client has the token.
        self.env = {"PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "RAY_USAGE_STATS_ENABLED": "0",
                    "HOME": str(root), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex, **(env or {})}
        sweep_leftovers()
        self.subnet = free_subnet()
        hosts = self.subnet.network_address
        self.host_ip = str(hosts + 1)  # the bridge's own address, in the test's namespace
        owner = os.getpid()
        self.head = Node(f"{PREFIX}h{tag}-{owner}", str(hosts + 2), 0, root / "head.log")
        self.workers = [Node(f"{PREFIX}w{tag}{n}-{owner}", str(hosts + 11 + n), 1, root / f"worker{n}.log")
                        for n in range(workers)]
        self.address = f"{self.head.ip}:{RAY_PORT}"

    @property
    def nodes(self) -> list[Node]:
        return [self.head, *self.workers]

    def start(self) -> None:
        self.start_network()
        self._ray_start(self.head, "--head", f"--port={RAY_PORT}", "--num-cpus=1", "--include-dashboard=false")
        for node in self.workers:
            self.start_worker(node)

    def start_network(self) -> None:
        """The bridge and each node's namespace on it. The namespaces come first: another run's sweep takes a
        bridge with none for a dead run's."""
        for node in self.nodes:
            sh("ip", "netns", "add", node.name)
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for index, node in enumerate(self.nodes):
            outside, inside = f"{self.bridge}o{index}", f"{self.bridge}i{index}"
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", outside, "master", self.bridge)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "link", "set", inside, "netns", node.name)
            address = f"{node.ip}/{self.subnet.prefixlen}"
            for command in (("ip", "link", "set", "lo", "up"), ("ip", "addr", "add", address, "dev", inside),
                            ("ip", "link", "set", inside, "up")):
                sh("ip", "netns", "exec", node.name, *command)

    def _ray_start(self, node: Node, *args: str) -> None:
        done = node.run(
            "ray", "start", f"--node-ip-address={node.ip}", f"--num-gpus={node.gpus}", "--disable-usage-stats",
            "--object-store-memory=100000000", *args, env=self.env, timeout=180,
        )
        with node.logs.open("a") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"ray start on {node.name} failed:\n{done.stdout}\n{done.stderr}")

    def start_worker(self, node: Node) -> None:
        self._ray_start(node, f"--address={self.address}", "--num-cpus=2")

    def ltxserve(self, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
        """`ltxserve ARGS` on the head node, with the cluster's environment and `env`."""
        return self.head.run(str(VENV_BIN / "ltxserve"), *args, env={**self.env, **env}, timeout=timeout)

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A command on the head node, with the cluster's environment."""
        return self.head.run(*args, env=self.env, timeout=timeout)

    def node_ids(self) -> dict[str, str]:
        """Ray's node id of each live node, by IP address."""
        code = ("import json, ray; ray.init(address='auto', logging_level='ERROR'); "
                "print('NODES', json.dumps({n['NodeManagerAddress']: n['NodeID'] for n in ray.nodes() if n['Alive']}))")
        done = self.ray("python", "-c", code)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        # Ray may print its own warnings (a lagging raylet) on the same output.
        line = next(line for line in done.stdout.splitlines() if line.startswith("NODES "))
        return json.loads(line.removeprefix("NODES "))

    def wait_for_nodes(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.node_ids()) != count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not reach {count} live nodes")
            time.sleep(1)

    def stop(self) -> None:
        for node in self.nodes:
            node.run("ray", "stop", "--force", env=self.env, timeout=60)
        self.stop_network()
        shutil.rmtree(self.root / "ray", ignore_errors=True)

    def stop_network(self) -> None:
        for node in self.nodes:
            node.kill()
            sh("ip", "netns", "del", node.name, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
