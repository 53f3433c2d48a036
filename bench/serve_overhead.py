"""What the HTTP service costs on top of the engine, and how many cheap requests it answers.

1. The same tiny-model generation (fixed seed) called directly on the engine in this process and
   through `POST /v1/ltx-2-fast` on a real `ltxserve serve` process, interleaved; the ratio of the
   medians (target <= 1.02). The HTTP time is the client's whole round trip: accept, queue, worker,
   result, download. Also the round trip less the worker's own generation time (x-generation-time):
   what the service adds to each request, free of the run-to-run noise of the generation itself.
2. Requests per second of `GET /healthz` and of a 401 answer (`POST /v1/ltx-2-fast` with an unknown
   key) under concurrent load from `wrk` (Debian: apt-get install wrk).

    python -m bench.serve_overhead [--runs 7] [--resolution 1080p] [--duration 6]
                                   [--out bench/results/serve_overhead.json]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--resolution", default="1080p")
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve_overhead.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs the wrk program (Debian: apt-get install wrk)")
    os.environ["HF_HUB_OFFLINE"] = "1"

    from ltxserve.api.schemas import parse_request
    from ltxserve.billing.keys import create_key
    from ltxserve.config import Settings
    from ltxserve.db import Database
    from ltxserve.logs import quiet_libraries
    from ltxserve.roots.worker import load_engine

    quiet_libraries()
    body = {"prompt": "rain on a tin roof, thunder", "duration": args.duration, "resolution": args.resolution,
            "generate_audio": True, "seed": 7}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = Settings(data_dir=data_dir)
        engine = load_engine(settings)
        db = Database(settings.database)
        db.migrate()
        api_key = create_key(db, credits=Decimal(1000), rpm_limit=10_000, concurrency_limit=10).secret
        db.dispose()
        server = start(data_dir, port)
        wait_ready(server, port)
        try:
            spec = parse_request(body).to_order(price=0)
            direct, served, in_worker = [], [], []
            generate = lambda: engine.generate(spec, data_dir / "direct.mp4")  # noqa: E731
            post = lambda: requests.post(f"{base}/v1/ltx-2-fast", json=body, headers={"x-api-key": api_key},  # noqa: E731
                                         timeout=900)
            generate()  # warm-up: first-call allocations in both processes
            assert post().status_code == 200
            for run in range(args.runs):
                # Alternate which goes first, so a drift in machine speed hits both sides alike.
                order = ("direct", "http") if run % 2 == 0 else ("http", "direct")
                for side in order:
                    started = time.perf_counter()
                    if side == "direct":
                        generate()
                        direct.append(time.perf_counter() - started)
                    else:
                        response = post()
                        served.append(time.perf_counter() - started)
                        assert response.status_code == 200, response.text
                        in_worker.append(float(response.headers["x-generation-time"]))
                        size = len(response.content)
                print(f"run {run + 1}/{args.runs}: direct {direct[-1]:.3f} s, http {served[-1]:.3f} s", flush=True)
            assert size == (data_dir / "direct.mp4").stat().st_size, "both paths must produce the same clip"

            lua = data_dir / "unauthorized.lua"
            lua.write_text(
                'wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n'
                'wrk.headers["x-api-key"] = "ltx_not-a-key"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n"
            )
            assert requests.post(f"{base}/v1/ltx-2-fast", json=body, headers={"x-api-key": "ltx_not-a-key"},
                                 timeout=30).status_code == 401
            healthz = wrk(f"{base}/healthz", args.load_seconds, args.connections)
            unauthorized = wrk(f"{base}/v1/ltx-2-fast", args.load_seconds, args.connections, lua)
        finally:
            server.terminate()
            server.wait(30)

    ratio = statistics.median(served) / statistics.median(direct)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "request": body,
        "runs": args.runs,
        "direct_s": direct,
        "http_s": served,
        "direct_median_s": statistics.median(direct),
        "http_median_s": statistics.median(served),
        "ratio_of_medians": ratio,
        "worker_generation_s": in_worker,
        # Per request: the round trip less the worker's own generation time, i.e. what the service adds.
        "service_overhead_median_ms": statistics.median(s - g for s, g in zip(served, in_worker, strict=False)) * 1000,
        "load": {"connections": args.connections, "seconds": args.load_seconds, "healthz": healthz,
                 "unauthorized_401": unauthorized},
    }
    print()
    print(f"{'':<34}{'median s':>10}")
    print(f"{'engine.generate (direct)':<34}{result['direct_median_s']:>10.3f}")
    print(f"{'POST /v1/ltx-2-fast (round trip)':<34}{result['http_median_s']:>10.3f}")
    print(f"{'ratio http / direct':<34}{ratio:>10.3f}")
    print(f"{'service overhead per request (ms)':<34}{result['service_overhead_median_ms']:>10.1f}")
    print()
    print(f"{'under load (' + str(args.connections) + ' connections)':<34}{'req/s':>10}{'p50 ms':>10}")
    for name, numbers in (("GET /healthz", healthz), ("401 (unknown key)", unauthorized)):
        print(f"{name:<34}{numbers['requests_per_s']:>10.0f}{numbers['p50_ms']:>10.2f}")
    write_result(args.out, result)


if __name__ == "__main__":
    main()
