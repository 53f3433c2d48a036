"""Helpers the service benchmarks share: real `ltxserve` processes on loopback ports, and `wrk` load."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: Path, port: int, *args: str, log_name: str = "server.log", **settings: str) -> subprocess.Popen:
    """`ltxserve ARGS` (default `serve`) on the data dir, with LTXSERVE_* settings given by keyword."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LTXSERVE_")}
    env.update(HF_HUB_OFFLINE="1", LTXSERVE_DATA_DIR=str(data_dir), LTXSERVE_PORT=str(port))
    env.update({f"LTXSERVE_{key.upper()}": value for key, value in settings.items()})
    log = (data_dir / log_name).open("wb")
    return subprocess.Popen([sys.executable, "-m", "ltxserve", *(args or ("serve",))], env=env, stdout=log, stderr=log)


def wait_ready(process: subprocess.Popen, port: int, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError("the server did not become ready")


def _ms(match: re.Match) -> float:
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]


def wrk(url: str, seconds: int, connections: int, script: Path | None = None, headers: dict | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "requests_per_s": rate,
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", output)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", output)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def write_result(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
