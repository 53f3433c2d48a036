"""How fast the async path hands a job to an idle worker, and how many status polls it answers.

1. Submit-to-start latency with an idle worker: `POST /v2/ltx-2-fast`, then the job's own record says
   when a worker claimed it (`metrics.queue_time`: the job store's acceptance and claim times). Each job
   is canceled as soon as it starts (the worker drops it at its first progress report), and the
   worker is let go idle before the next submit. Measured for the embedded worker (woken in-process)
   and for a separate `ltxserve worker` process (which finds jobs by polling the database every
   LTXSERVE_WORKER_POLL_S on SQLite; woken by NOTIFY on PostgreSQL), one database for both shapes.
2. `GET /v2/requests/{id}/status` under 50 concurrent pollers (`wrk`, Debian: apt-get install wrk):
   requests/s and latency, for a finished request and for one waiting in the queue (which also counts
   its queue position).

    python -m bench.queue [--database-url URL] [--samples 50] [--pollers 50] [--load-seconds 10] [--out FILE]

--database-url: an empty PostgreSQL database or schema (default: a SQLite file in a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import requests

from bench._serving import free_port, start, wait_ready, write_result, wrk

ROOT = Path(__file__).resolve().parents[1]
BODY = {"prompt": "a lighthouse at dusk, waves", "duration": 6, "resolution": "1080p", "generate_audio": False}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _status(base: str, headers: dict, request_id: str) -> dict:
    return requests.get(f"{base}/v2/requests/{request_id}/status", headers=headers, timeout=30).json()


def submit_to_start(base: str, api_key: str, samples: int, idle_s: float) -> list[float]:
    headers = {"x-api-key": api_key}
    latencies = []
    for _ in range(samples):
        time.sleep(idle_s)
        request_id = requests.post(f"{base}/v2/ltx-2-fast", json=BODY, headers=headers, timeout=30).json()["request_id"]
        while _status(base, headers, request_id)["status"] == "QUEUED":
            time.sleep(0.01)
        requests.post(f"{base}/v2/requests/{request_id}/cancel", headers=headers, timeout=30)
        latencies.append(_status(base, headers, request_id)["metrics"]["queue_time"] * 1000)
    return latencies


def _summary(latencies: list[float]) -> dict:
    return {"samples": len(latencies), "p50_ms": statistics.median(latencies),
            "p99_ms": _percentile(latencies, 0.99), "max_ms": max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--idle-s", type=float, default=1.0, help="pause before each submit: the worker is idle")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--database-url", help="empty PostgreSQL database or schema (default: SQLite)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs the wrk program (Debian: apt-get install wrk)")
    os.environ["HF_HUB_OFFLINE"] = "1"

    from ltxserve.billing.keys import create_key
    from ltxserve.config import Settings
    from ltxserve.db import Database

    latency, polls = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        database = args.database_url or Settings(data_dir=data_dir).database
        db = Database(database)
        db.migrate()
        api_key = create_key(db, credits=Decimal(100_000), rpm_limit=1_000_000, concurrency_limit=1_000).secret
        db.dispose()
        headers = {"x-api-key": api_key}
        processes = []
        try:
            embedded_port, separate_port = free_port(), free_port()
            processes.append(start(data_dir, embedded_port, log_name="embedded.log", database_url=database))
            wait_ready(processes[0], embedded_port)
            latency["embedded worker"] = _summary(
                submit_to_start(f"http://127.0.0.1:{embedded_port}", api_key, args.samples, args.idle_s))
            print(f"embedded worker: {latency['embedded worker']}", flush=True)

            # The other shape on the same database: an API-only server and a worker process.
            processes[0].terminate()
            processes[0].wait(60)
            processes.append(start(data_dir, separate_port, "serve", "--workers", "0", log_name="api-only.log",
                                   database_url=database))
            processes.append(start(data_dir, 0, "worker", log_name="worker.log", database_url=database))
            wait_ready(processes[1], separate_port)
            base = f"http://127.0.0.1:{separate_port}"
            latency["worker process"] = _summary(submit_to_start(base, api_key, args.samples, args.idle_s))
            print(f"worker process: {latency['worker process']}", flush=True)

            finished = requests.post(f"{base}/v2/ltx-2-fast", json=BODY, headers=headers, timeout=30).json()
            while _status(base, headers, finished["request_id"])["status"] not in ("COMPLETED", "FAILED"):
                time.sleep(0.1)
            # Two long clips ahead of it keep a third request queued while it is polled.
            ahead = [requests.post(f"{base}/v2/ltx-2-fast", json={**BODY, "duration": 10}, headers=headers,
                                   timeout=30).json()["request_id"] for _ in range(3)]
            for name, request_id in (("finished request", finished["request_id"]), ("queued request", ahead[-1])):
                polls[name] = wrk(f"{base}/v2/requests/{request_id}/status", args.load_seconds, args.pollers,
                                  headers=headers)
                print(f"{name}: {polls[name]}", flush=True)
            assert _status(base, headers, ahead[-1])["status"] == "QUEUED", "the polled request left the queue"
            for request_id in ahead:
                requests.post(f"{base}/v2/requests/{request_id}/cancel", headers=headers, timeout=30)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(60)

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "database": "postgresql" if args.database_url else "sqlite",
        "submit_to_start_ms": latency,
        "status_polls": {"pollers": args.pollers, "seconds": args.load_seconds, **polls},
    }
    print()
    print(f"{'submit -> worker starts (ms), ' + result['database']:<36}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, numbers in latency.items():
        print(f"{name:<36}{numbers['p50_ms']:>9.1f}{numbers['p99_ms']:>9.1f}{numbers['max_ms']:>9.1f}")
    print()
    print(f"{'status polls, ' + str(args.pollers) + ' pollers':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, numbers in polls.items():
        print(f"{name:<36}{numbers['requests_per_s']:>9.0f}{numbers['p50_ms']:>9.2f}{numbers['p99_ms']:>9.2f}")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
