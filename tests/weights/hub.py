"""A stand-in for the Hugging Face Hub on 127.0.0.1: the HTTP endpoints huggingface_hub 1.32 calls to resolve a
revision, list a repository and download its files, so that its real download code runs in the tests.

- `GET /api/models/{repo}/revision/{rev}`: model info (`sha`, `siblings`); 401 `RepoNotFound` for an unknown
  repository and 404 `RevisionNotFound` for an unknown revision, as the Hub answers.
- `GET /api/models/{repo}/tree/{rev}`: the listing, with `lfs` for weights files.
- `HEAD|GET /{repo}/resolve/{rev}/{path}`: `X-Repo-Commit` and `ETag` (the git blob id); weights files answer
  302 to a "CDN" on another host name (`localhost`) with `X-Linked-Etag` (sha256) and `X-Linked-Size`, as the Hub
  redirects LFS files to its storage. A gated repository wants `Authorization: Bearer <token>`: 401 without one,
  403 with another, both with `X-Error-Code: GatedRepo`. Its info and listing are public, as on the Hub.
- `GET /cdn/{sha256}`: the bytes, with `Range` support (206); a file marked with `cut_once` is cut off halfway
  through its first full download.

It never offers Xet (no `X-Xet-Hash` header, no `xetHash` in listings), so huggingface_hub falls back to HTTP.
Every request is recorded in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def _lfs(path: str) -> bool:
    return path.endswith(".safetensors")


@dataclass
class Repo:
    files: dict[str, bytes]
    token: str | None = None  # set: the repository is gated

    @property
    def commit(self) -> str:
        listing = "\n".join(f"{path} {blob_id(data)}" for path, data in sorted(self.files.items()))
        return hashlib.sha1(listing.encode()).hexdigest()


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes() for path in directory.rglob("*") if path.is_file()
    }


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    host: str
    range: str | None
    authorization: str | None


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    cut_once: set[str] = field(default_factory=set)  # sha256s of files to cut off once
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def take_cut(self, sha256: str) -> bool:
        with self._lock:
            if sha256 in self.cut_once:
                self.cut_once.discard(sha256)
                return True
            return False

    def file_by_sha256(self, sha256: str) -> bytes | None:
        for repo in self.repos.values():
            for data in repo.files.values():
                if hashlib.sha256(data).hexdigest() == sha256:
                    return data
        return None


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: every request is in `FakeHub.requests`."""

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"", head: bool = False) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
                   body, head)

    def _route(self, head: bool) -> None:
        url = urlsplit(self.path)
        segments = [unquote(segment) for segment in url.path.split("/")[1:]]
        self.hub.record(Seen(self.command, url.path, self.headers.get("Host", ""), self.headers.get("Range"),
                             self.headers.get("Authorization")))
        if segments[:1] == ["cdn"] and len(segments) == 2:
            self._cdn(segments[1], head)
            return
        if segments[:2] == ["api", "models"] and len(segments) >= 6:
            repo_id, verb, revision, rest = "/".join(segments[2:4]), segments[4], segments[5], segments[6:]
        elif len(segments) >= 5 and segments[2] == "resolve":
            repo_id, verb, revision, rest = "/".join(segments[:2]), "resolve", segments[3], segments[4:]
        else:
            self._error(404, "NotFound", f"no route for {url.path}", head)
            return
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found", head)
            return
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return
        if verb == "revision":
            self._info(repo_id, repo, head)
        elif verb == "tree":
            self._tree(repo, parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true", head)
        elif verb == "resolve":
            self._resolve(repo_id, repo, "/".join(rest), head)
        else:
            self._error(404, "NotFound", f"no route for {url.path}", head)

    def _info(self, repo_id: str, repo: Repo, head: bool) -> None:
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.token else False,
            "disabled": False,
            "library_name": "diffusers",
            "tags": ["diffusers"],
            "siblings": [{"rfilename": path} for path in sorted(repo.files)],
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), head)

    def _tree(self, repo: Repo, recursive: bool, head: bool) -> None:
        entries: list[dict] = []
        folders = sorted({"/".join(path.split("/")[:depth]) for path in repo.files
                          for depth in range(1, path.count("/") + 1)})
        for folder in folders:
            entries.append({"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0,
                            "path": folder})
        for path, data in sorted(repo.files.items()):
            entry = {"type": "file", "oid": blob_id(data), "size": len(data), "path": path}
            if _lfs(path):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        if not recursive:
            entries = [entry for entry in entries if "/" not in entry["path"]]
        self._send(200, {"Content-Type": "application/json"}, json.dumps(entries).encode(), head)

    def _resolve(self, repo_id: str, repo: Repo, path: str, head: bool) -> None:
        if repo.token is not None:
            given = self.headers.get("Authorization")
            if given is None:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access to it "
                            "and be authenticated to access it. Please log in.", head)
                return
            if given != f"Bearer {repo.token}":
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                            "authorized list.", head)
                return
        data = repo.files.get(path)
        if data is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on main", head)
            return
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{blob_id(data)}"', "Accept-Ranges": "bytes"}
        if _lfs(path):
            sha256 = hashlib.sha256(data).hexdigest()
            headers |= {"Location": f"http://localhost:{self.hub.port}/cdn/{sha256}",
                        "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data))}
            self._send(302, headers, head=head)
            return
        self._send(200, headers, data, head)

    def _cdn(self, sha256: str, head: bool) -> None:
        data = self.hub.file_by_sha256(sha256)
        if data is None:
            self._send(404, head=head)
            return
        wanted = self.headers.get("Range")
        if wanted is None:
            if not head and self.hub.take_cut(sha256):
                # Announce the whole file, send half, hang up: a connection lost mid-file.
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, {"Accept-Ranges": "bytes", "ETag": f'"{sha256}"'}, data, head)
            return
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        part = data[start:]
        self._send(206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "ETag": f'"{sha256}"'},
                   part, head)
