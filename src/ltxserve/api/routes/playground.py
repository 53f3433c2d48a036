"""The playground page at `/` and `/playground`: static files shipped in the package (no build step, no CDN,
so it works offline), a client of the public API like any other. Not part of the API's schema."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Response

from ...errors import NotFound
from ...order.vocabulary import vocabulary

router = APIRouter(include_in_schema=False)

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "vocabulary.js": "text/javascript; charset=utf-8",
}
# The page runs only its own code and talks only to this server; clips may come from a storage bucket's
# presigned URL, and a first frame may be any image URL the user names.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _read(name: str) -> bytes:
    if name == "vocabulary.js":
        # The request's vocabulary as the server has it, so the page never lists choices of its own.
        return f"export const VOCABULARY = {json.dumps(vocabulary(), ensure_ascii=False)};\n".encode()
    return (files("ltxserve") / "playground" / name).read_bytes()


def _file(name: str) -> Response:
    return Response(
        _read(name),
        media_type=_TYPES[name],
        headers={"content-security-policy": _POLICY, "cache-control": "no-cache", "x-content-type-options": "nosniff"},
    )


@router.get("/")
@router.get("/playground")
def page() -> Response:
    return _file("index.html")


@router.get("/playground/{name}")
def asset(name: str) -> Response:
    if name not in _TYPES:
        raise NotFound(f"There is no playground file {name!r}.")
    return _file(name)
