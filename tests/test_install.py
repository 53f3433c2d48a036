"""The client-only distribution (clients/python): installed alone in a fresh virtual environment, offline, it
brings httpx and nothing of the server (no PyTorch, diffusers, boto3 or database driver), and a script run by
that environment's Python makes a real request against a real server."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib.metadata import Distribution, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.api.client import SMALL
from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIST = ROOT / "clients" / "python"
SERVER_ONLY = {"torch", "diffusers", "transformers", "boto3", "botocore", "psycopg", "psycopg-binary", "sqlalchemy"}

SCRIPT = """
import json, sys
import ltxserve
from ltxserve.client import Client

base, key, fields, out = sys.argv[1:]
with Client(base, key) as client:
    clip = client.run(**json.loads(fields))
with open(out, "wb") as file:
    file.write(clip)
print(json.dumps({"version": ltxserve.__version__, "client": ltxserve.client.__file__, "modules": sorted(sys.modules)}))
"""


def _offline_env() -> dict[str, str]:
    """This environment without PYTHONPATH or any pip setting: nothing but the paths given may be found."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON", "LTXSERVE_"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _pip(*args: str | Path) -> str:
    command = [sys.executable, "-m", "pip", *map(str, args)]
    done = subprocess.run(command, check=False, env=_offline_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _requirement_closure(names: list[str]) -> dict[str, Distribution]:
    """The distributions these requirements need, transitively, as installed in the test environment."""
    found: dict[str, Distribution] = {}
    pending = [Requirement(name) for name in names]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found[name] = distribution(name)
        for text in found[name].requires or []:
            needed = Requirement(text)
            extras = {"", *requirement.extras}
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return found


def _wheel_from_installed(dist: Distribution, into: Path) -> Path:
    """A wheel of an installed pure-Python distribution, made from its recorded files, so that a fresh
    environment gets the same version with no index. Scripts (recorded outside site-packages) are left out:
    pip writes them again from entry_points.txt."""
    files = [file for file in dist.files or [] if file.parts[0] != ".." and "__pycache__" not in file.parts]
    dist_info = next(file.parts[0] for file in files if file.parts[0].endswith(".dist-info"))
    wheel_meta = Path(str(dist.locate_file(f"{dist_info}/WHEEL"))).read_text()
    assert "Root-Is-Purelib: true" in wheel_meta, f"{dist_info} is not pure Python"
    tag = next(line.split(": ", 1)[1] for line in wheel_meta.splitlines() if line.startswith("Tag: "))
    path = into / f"{dist_info.removesuffix('.dist-info')}-{tag}.whl"
    record = io.StringIO()
    rows = csv.writer(record)
    with zipfile.ZipFile(path, "w") as wheel:
        for file in files:
            if file.parts[0] == dist_info and file.name in {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}:
                continue
            data = Path(str(dist.locate_file(file))).read_bytes()
            wheel.writestr(file.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.writerow([file.as_posix(), f"sha256={digest}", len(data)])
        rows.writerow([f"{dist_info}/RECORD", "", ""])
        wheel.writestr(f"{dist_info}/RECORD", record.getvalue())
    return path


def test_the_client_alone_installs_offline_without_the_server_and_makes_a_request(tmp_path, tiny_models):
    server_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    client_project = tomllib.loads((CLIENT_DIST / "pyproject.toml").read_text())["project"]
    assert client_project["version"] == server_version

    # The client distribution's wheel, built from a copy with its links to src/ resolved, as its sdist has them.
    source = tmp_path / "client-source"
    shutil.copytree(CLIENT_DIST, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    wheels = tmp_path / "wheels"
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", wheels, source)
    dependencies = _requirement_closure(client_project["dependencies"])
    for dist in dependencies.values():
        _wheel_from_installed(dist, wheels)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # pip resolves the client's declared requirements from these wheels alone: a missing one fails here.
    _pip("--python", python, "install", "--no-index", "--find-links", wheels, "ltxserve-client")
    _pip("--python", python, "check")
    listed = json.loads(_pip("--python", python, "list", "--format=json"))
    installed = {canonicalize_name(row["name"]) for row in listed}
    assert installed == {"ltxserve-client", *dependencies}
    assert "httpx" in installed and not installed & SERVER_ONLY

    server = Server(tmp_path / "server", tiny_models).start()
    try:
        key = server.create_key("10")
        out = tmp_path / "clip.mp4"
        done = subprocess.run(
            [python, "-c", SCRIPT, server.base, key, json.dumps(SMALL), str(out)],
            check=False,
            cwd=tmp_path,
            env=_offline_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert Path(report["client"]).is_relative_to(env_dir), "ltxserve.client came from outside the new environment"
    assert report["version"] == server_version  # read from the ltxserve-client distribution's metadata
    assert not {module.split(".")[0] for module in report["modules"]} & {"torch", "diffusers", "boto3", "sqlalchemy"}
    clip = out.read_bytes()
    assert clip[4:8] == b"ftyp" and len(clip) > 10_000
