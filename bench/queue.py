"""The control plane under load: how fast the async path hands a job to an idle worker, how status polls
compare with /healthz on the same server, what 1,000 open event streams cost, and what the sync
endpoint adds to a generation.

1. Submit-to-start latency with an idle worker: `POST /v2/ltx-2-fast`, then the job's own record says
   when a worker claimed it (`metrics.queue_time`). Each job is canceled as soon as it starts, and the
   worker is let go idle before the next submit. For the server's own (supervised) worker and for a
   separate `ltxserve worker` process, on one database.
2. `GET /healthz` and `GET /v2/requests/{id}/status` under 50 concurrent clients (`wrk`), back to back on
   the same API-only server: idle, then while the worker generates (a finished request, and one
   waiting in the queue, which adds its queue position). The ratio status/healthz is the figure of merit.
3. CPU of the API process while 1,000 `/events` streams stay open on requests that do not change, less
   its CPU without them over as long a window just before.
4. The sync endpoint's own overhead: a `POST /v1/ltx-2-fast` until its response's headers, less the
   worker's generation time (`x-generation-time`), median of several; the body's transfer apart.

    python -m bench.queue [--database-url URL] [--samples 30] [--pollers 50] [--load-seconds 10]
                          [--streams 1000] [--out FILE]

--database-url: an empty PostgreSQL database or schema (default: a SQLite file in a temporary folder).
Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
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
LONG = {**BODY, "duration": 10, "resolution": "2k"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _status(base: str, headers: dict, request_id: str) -> dict:
    return requests.get(f"{base}/v2/requests/{request_id}/status", headers=headers, timeout=30).json()


def _submit(base: str, headers: dict, body: dict) -> str:
    return requests.post(f"{base}/v2/ltx-2-fast", json=body, headers=headers, timeout=30).json()["request_id"]


def _worker_idle(metrics_url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while "ltxserve_worker_busy 0.0" not in requests.get(metrics_url, timeout=30).text:
        assert time.monotonic() < deadline, "the worker stayed busy"
        time.sleep(0.02)


def submit_to_start(base: str, api_key: str, samples: int, idle_s: float, worker_metrics: str | None = None
                    ) -> list[float]:
    """`worker_metrics`: a worker process's metrics URL. A canceled job is dropped by such a worker only at
    its next progress report (in the tiny model's video decode, seconds apart): each sample first waits
    for it to be idle, or it would measure that instead."""
    headers = {"x-api-key": api_key}
    latencies = []
    for _ in range(samples):
        if worker_metrics is not None:
            _worker_idle(worker_metrics)
        time.sleep(idle_s)
        request_id = _submit(base, headers, BODY)
        while _status(base, headers, request_id)["status"] == "QUEUED":
            time.sleep(0.01)
        requests.post(f"{base}/v2/requests/{request_id}/cancel", headers=headers, timeout=30)
        latencies.append(_status(base, headers, request_id)["metrics"]["queue_time"] * 1000)
    return latencies


def _summary(latencies: list[float]) -> dict:
    return {"samples": len(latencies), "p50_ms": statistics.median(latencies),
            "p99_ms": _percentile(latencies, 0.99), "max_ms": max(latencies)}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _open_streams(port: int, api_key: str, request_ids: list[str], count: int) -> list:
    """`count` event streams, spread over the requests, each read to its first event and then left open."""
    streams = []
    for index in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request_id = request_ids[index % len(request_ids)]
        writer.write(f"GET /v2/requests/{request_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"x-api-key: {api_key}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        streams.append((reader, writer))
    for reader, _ in streams:
        await reader.readuntil(b"\n\n")  # the headers
        await reader.readuntil(b"\n\n")  # the replayed QUEUED event
    return streams


def streams_cpu(pid: int, port: int, api_key: str, request_ids: list[str], count: int, seconds: float) -> dict:
    """The API process's CPU over `seconds`, first without streams, then with `count` of them open on
    requests that do not change: the streams' own cost is the difference (the worker generates throughout,
    in its own process, and its progress reaches this one's feed in both windows)."""

    async def measure() -> dict:
        before, started = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        baseline = 100 * (_cpu_seconds(pid) - before) / (time.monotonic() - started)
        streams = await _open_streams(port, api_key, request_ids, count)
        await asyncio.sleep(3.0)  # past the streams' first replies
        before, started = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        with_streams = 100 * (_cpu_seconds(pid) - before) / (time.monotonic() - started)
        for _, writer in streams:
            writer.close()
        return {"streams": count, "seconds": seconds, "cpu_percent_without": round(baseline, 2),
                "cpu_percent_with": round(with_streams, 2),
                "cpu_percent_of_one_core": round(with_streams - baseline, 2)}

    return asyncio.run(measure())


def sync_overhead(base: str, headers: dict, samples: int) -> dict:
    """Time to the response's headers less the worker's generation time (the endpoint's own overhead: intake,
    claim, the finish reaching the waiting request); the body's transfer is given apart (a clip is tens of MB,
    and reading it is the client's time as much as the server's)."""
    overheads, transfers = [], []
    for _ in range(samples):
        started = time.perf_counter()
        response = requests.post(f"{base}/v1/ltx-2-fast", json=BODY, headers=headers, timeout=300, stream=True)
        answered = time.perf_counter()
        size = sum(len(chunk) for chunk in response.iter_content(1 << 20))
        assert response.status_code == 200, response.text
        overheads.append((answered - started - float(response.headers["x-generation-time"])) * 1000)
        transfers.append((time.perf_counter() - answered) * 1000)
    return {"samples": samples, "p50_ms": round(statistics.median(overheads), 1), "max_ms": round(max(overheads), 1),
            "body_p50_ms": round(statistics.median(transfers), 1), "body_mb": round(size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--idle-s", type=float, default=1.0, help="pause before each submit: the worker is idle")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--database-url", help="empty PostgreSQL database or schema (default: SQLite)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs the wrk program (Debian: apt-get install wrk)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    # Room for the open streams on both ends (the servers inherit the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    from ltxserve.billing.keys import create_key
    from ltxserve.config import Settings
    from ltxserve.db import Database

    latency, polls, streams, overhead = {}, {}, {}, {}
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
            embedded = f"http://127.0.0.1:{embedded_port}"
            latency["embedded worker"] = _summary(submit_to_start(embedded, api_key, args.samples, args.idle_s))
            print(f"embedded worker: {latency['embedded worker']}", flush=True)
            overhead["sync POST /v1, embedded worker"] = sync_overhead(embedded, headers, max(5, args.samples // 3))
            print(f"sync overhead: {overhead}", flush=True)

            # The other shape on the same database: an API-only server and a worker process.
            processes[0].terminate()
            processes[0].wait(60)
            processes.append(start(data_dir, separate_port, "serve", "--workers", "0", log_name="api-only.log",
                                   database_url=database))
            metrics_port = free_port()
            processes.append(start(data_dir, 0, "worker", "--metrics-port", str(metrics_port),
                                   log_name="worker.log", database_url=database))
            wait_ready(processes[1], separate_port)
            base = f"http://127.0.0.1:{separate_port}"
            latency["worker process"] = _summary(submit_to_start(
                base, api_key, args.samples, args.idle_s, f"http://127.0.0.1:{metrics_port}/metrics"))
            print(f"worker process: {latency['worker process']}", flush=True)

            finished = _submit(base, headers, BODY)
            while _status(base, headers, finished)["status"] not in ("COMPLETED", "FAILED"):
                time.sleep(0.1)

            def load(name: str, path: str) -> None:
                polls[name] = wrk(f"{base}{path}", args.load_seconds, args.pollers, headers=headers)
                print(f"{name}: {polls[name]}", flush=True)

            load("healthz, idle", "/healthz")
            load("status of a finished request, idle", f"/v2/requests/{finished}/status")
            # Long clips keep the worker generating, and the last of them queued, while polls run.
            ahead = [_submit(base, headers, LONG) for _ in range(4)]
            while _status(base, headers, ahead[0])["status"] != "PROCESSING":
                time.sleep(0.1)
            load("healthz, generating", "/healthz")
            load("status of a finished request, generating", f"/v2/requests/{finished}/status")
            load("status of a queued request, generating", f"/v2/requests/{ahead[-1]}/status")
            assert _status(base, headers, ahead[-1])["status"] == "QUEUED", "the polled request left the queue"
            streams = streams_cpu(processes[1].pid, separate_port, api_key, ahead[1:], args.streams,
                                  args.load_seconds)
            print(f"streams: {streams}", flush=True)
            for request_id in ahead:
                requests.post(f"{base}/v2/requests/{request_id}/cancel", headers=headers, timeout=30)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(60)

    ratios = {
        "idle": polls["status of a finished request, idle"]["requests_per_s"]
        / polls["healthz, idle"]["requests_per_s"],
        "generating, finished request": polls["status of a finished request, generating"]["requests_per_s"]
        / polls["healthz, generating"]["requests_per_s"],
        "generating, queued request": polls["status of a queued request, generating"]["requests_per_s"]
        / polls["healthz, generating"]["requests_per_s"],
    }
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "database": "postgresql" if args.database_url else "sqlite",
        "submit_to_start_ms": latency,
        "polls": {"clients": args.pollers, "seconds": args.load_seconds, **polls},
        "status_over_healthz": {name: round(value, 3) for name, value in ratios.items()},
        "idle_event_streams": streams,
        "sync_overhead_ms": overhead,
    }
    print()
    print(f"{'submit -> worker starts (ms), ' + result['database']:<44}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, numbers in latency.items():
        print(f"{name:<44}{numbers['p50_ms']:>9.1f}{numbers['p99_ms']:>9.1f}{numbers['max_ms']:>9.1f}")
    print()
    print(f"{str(args.pollers) + ' clients':<44}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, numbers in polls.items():
        print(f"{name:<44}{numbers['requests_per_s']:>9.0f}{numbers['p50_ms']:>9.2f}{numbers['p99_ms']:>9.2f}")
    print()
    for name, value in ratios.items():
        print(f"status / healthz, {name:<26}{value:>9.3f}")
    print(f"{streams['streams']} idle event streams: {streams['cpu_percent_of_one_core']}% of one core "
          f"(the API process at {streams['cpu_percent_with']}% with them, {streams['cpu_percent_without']}% without)")
    for name, numbers in overhead.items():
        print(f"{name}: {numbers['p50_ms']} ms a request to the headers (median of {numbers['samples']}); "
              f"then {numbers['body_p50_ms']} ms to read the {numbers['body_mb']} MB body")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
