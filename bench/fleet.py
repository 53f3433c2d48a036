"""The fleet on a real Ray cluster (a head and two fake-GPU worker nodes in network namespaces, as the tests
run it; needs root), with the tiny model on the CPU.

1. Cold start from zero replicas: a request submitted to an idle fleet, timed from the job store (polled
   every 20 ms): submit → the policy's target rises (the policy's poll) → a replica registers as a worker
   (Ray scheduling, the replica process, its imports, the model load) → the request is claimed. The model
   load alone is timed in this process for comparison.
2. Submit → claim with an idle warm replica against a plain `ltxserve worker` process on the same worker
   node ("host", so the same network path to the database; PostgreSQL: both wake on LISTEN/NOTIFY), one
   after the other; each job canceled once claimed, the time read from the job's record (µs).
3. Jobs per minute: N jobs at once against a fleet pinned to 1 replica, then to 2 (min = max, so no cold
   start is counted). On a 2-core machine the two replicas share the cores: expect CPU-bound numbers.

    sudo python -m bench.fleet [--samples 10] [--jobs 6] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import select

from bench._serving import write_result
from ltxserve.db import WorkerRow

ROOT = Path(__file__).resolve().parents[1]
BODY = {"prompt": "a lighthouse at dusk, waves", "duration": 6, "resolution": "1080p", "generate_audio": True}


def _poll(check, timeout_s: float = 300, every_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(every_s)
    return value


class Bench:
    def __init__(self, root: Path, samples: int, jobs: int) -> None:
        from tests.fleet.cluster import VENV_BIN, BridgedPostgres, RayCluster, replica_environment
        from tests.servers import Server

        self.samples, self.jobs = samples, jobs
        self.cluster = RayCluster(root / "cluster")
        (root / "cluster").mkdir()
        self.cluster.start()
        self.postgres = BridgedPostgres(self.cluster)
        self.postgres.start()
        self.venv_bin = VENV_BIN
        from ltxserve.engine.tiny import ensure_tiny_model

        ensure_tiny_model(root / "models")
        settings = {"database_url": self.postgres.url, "embedded_workers": "0", "results_dir": str(root / "results"),
                    "video_preset": "ultrafast", "heartbeat_s": "1.5"}
        self.server = Server(root / "api", root / "models", settings).start(ready=False)
        self.replica_env = replica_environment(self.server.env, self.postgres.bridge_url)
        self.key = self.server.create_key("100000", concurrency_limit=1000, rpm_limit=100000)
        self.headers = {"x-api-key": self.key}
        from ltxserve.db import Database
        from ltxserve.jobs import JobStore

        self.store = JobStore(Database(self.postgres.url))

    def deploy(self, minimum: int, maximum: int) -> None:
        done = self.cluster.ltxserve(
            "fleet", "deploy", "--ray-address", self.cluster.address, "--min-replicas", str(minimum),
            "--max-replicas", str(maximum), "--cpus-per-replica", "1", "--downscale-delay-s", "5",
            "--grace-period-s", "30", env=self.replica_env, timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)

    def down(self) -> None:
        self.cluster.ltxserve("fleet", "down", "--ray-address", self.cluster.address, env=self.replica_env)

    def submit(self, body: dict | None = None) -> str:
        response = requests.post(f"{self.server.base}/v2/ltx-2-fast", json=body or BODY, headers=self.headers,
                                 timeout=60)
        response.raise_for_status()
        return response.json()["request_id"]

    def status(self, request_id: str) -> dict:
        return requests.get(f"{self.server.base}/v2/requests/{request_id}/status", headers=self.headers,
                            timeout=30).json()

    def fleet_live(self) -> int:
        return self.store.workers.live("ltxserve-fleet")

    # --- 1 -----------------------------------------------------------------------------------------

    def cold_start(self) -> dict:
        self.deploy(0, 1)
        _poll(lambda: True if (f := self.store.fleets.get("ltxserve-fleet")) and f.reported_at else None)
        started = time.monotonic()
        request_id = self.submit()
        targeted = _poll(lambda: time.monotonic() if self.store.fleets.get("ltxserve-fleet").target > 0 else None)
        _poll(lambda: True if self.fleet_live() > 0 else None)
        with self.store.db.read() as session:
            query = select(WorkerRow.started_at).where(WorkerRow.fleet == "ltxserve-fleet")
            registered_at = session.scalars(query).one()
        _poll(lambda: True if self.status(request_id)["status"] == "COMPLETED" else None)
        job = self.store.records.get(request_id)
        # The job store's own times from the submit on: the replica's registration, the claim.
        registered = started + (registered_at - job.created_at).total_seconds()
        claimed = started + (job.started_at - job.created_at).total_seconds()
        load = subprocess.run(
            [sys.executable, "-c", "import time, os; from ltxserve.config import Settings; "
             "from ltxserve.roots.worker import load_engine; t = time.perf_counter(); "
             "load_engine(Settings()); print(time.perf_counter() - t)"],
            env={**self.server.env}, capture_output=True, text=True, check=True,
        )
        self.down()
        return {
            "policy_reacts_s": targeted - started,
            "replica_up_s": registered - targeted,
            "of_which_model_load_s": float(load.stdout.split()[-1]),
            "claim_s": claimed - registered,
            "submit_to_claim_s": claimed - started,
        }

    # --- 2 -----------------------------------------------------------------------------------------

    def submit_to_claim(self) -> list[float]:
        latencies = []
        for _ in range(self.samples):
            # The canceled job before is dropped at its worker's next progress report; let it go idle.
            time.sleep(3)
            request_id = self.submit()
            _poll(lambda rid=request_id: True if self.status(rid)["status"] != "QUEUED" else None, every_s=0.01)
            requests.post(f"{self.server.base}/v2/requests/{request_id}/cancel", headers=self.headers, timeout=30)
            job = self.store.records.get(request_id)
            latencies.append((job.started_at - job.created_at).total_seconds() * 1000)
        return latencies

    def warm_against_process(self) -> dict:
        self.deploy(1, 1)
        _poll(lambda: True if self.fleet_live() == 1 else None, timeout_s=600)
        replica = self.submit_to_claim()
        self.down()
        _poll(lambda: True if self.fleet_live() == 0 else None, timeout_s=120)
        node = self.cluster.workers[0]
        with (self.cluster.root / "worker-process.log").open("ab") as log:
            env = {**self.replica_env, "PATH": self.cluster.env["PATH"], "HOME": self.cluster.env["HOME"]}
            worker = subprocess.Popen(["ip", "netns", "exec", node.name, "env", *(f"{k}={v}" for k, v in env.items()),
                                       str(self.venv_bin / "ltxserve"), "worker"], stdout=log, stderr=log)
        _poll(lambda: True if self.store.workers.live() == 1 else None, timeout_s=300)
        process = self.submit_to_claim()
        worker.terminate()
        worker.wait(60)
        return {"replica_p50_ms": statistics.median(replica), "process_p50_ms": statistics.median(process),
                "replica_max_ms": max(replica), "process_max_ms": max(process),
                "ratio": statistics.median(replica) / statistics.median(process)}

    # --- 3 -----------------------------------------------------------------------------------------

    def throughput(self, replicas: int) -> float:
        self.deploy(replicas, replicas)
        _poll(lambda: True if self.fleet_live() == replicas else None, timeout_s=600)
        started = time.monotonic()
        ids = [self.submit({**BODY, "seed": n}) for n in range(self.jobs)]
        for request_id in ids:
            _poll(lambda rid=request_id: True if self.status(rid)["status"] in ("COMPLETED", "FAILED") else None,
                  timeout_s=1200, every_s=0.2)
        seconds = time.monotonic() - started
        self.down()
        _poll(lambda: True if self.fleet_live() == 0 else None, timeout_s=120)
        return self.jobs / seconds * 60

    def close(self) -> None:
        self.store.db.dispose()
        self.server.stop()
        self.cluster.stop()
        self.postgres.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fleet.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the cluster rig is the tests'
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.samples, args.jobs)
        try:
            cold = bench.cold_start()
            print(f"cold start: {cold}", flush=True)
            warm = bench.warm_against_process()
            print(f"submit→claim: {warm}", flush=True)
            one, two = bench.throughput(1), bench.throughput(2)
        finally:
            bench.close()
    rows = [
        ("cold start: submit → policy target > 0", f"{cold['policy_reacts_s']:.2f} s"),
        ("cold start: target → replica registered (Ray + process + load)", f"{cold['replica_up_s']:.2f} s"),
        ("  model load alone (tiny, this process)", f"{cold['of_which_model_load_s']:.2f} s"),
        ("cold start: registered → claimed", f"{cold['claim_s']:.3f} s"),
        ("cold start: submit → claim", f"{cold['submit_to_claim_s']:.2f} s"),
        ("submit → claim, warm replica (p50)", f"{warm['replica_p50_ms']:.2f} ms"),
        ("submit → claim, `ltxserve worker` process, same node (p50)", f"{warm['process_p50_ms']:.2f} ms"),
        ("ratio replica / process (goal ≤ 1.2)", f"{warm['ratio']:.2f}"),
        (f"jobs per minute, 1 replica ({args.jobs} jobs)", f"{one:.2f}"),
        (f"jobs per minute, 2 replicas ({args.jobs} jobs)", f"{two:.2f}"),
        ("ratio 2 / 1 replicas (2 CPU cores: CPU-bound)", f"{two / one:.2f}"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    write_result(args.out, {"cold_start": cold, "submit_to_claim": warm, "jobs_per_minute": {"1": one, "2": two},
                            "samples": args.samples, "jobs": args.jobs})


if __name__ == "__main__":
    main()
