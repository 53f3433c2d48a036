"""The storage interface the workers write through and the API reads through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class ResultStorage(Protocol):
    def put(self, source: Path, key: str) -> None:
        """Take ownership of the finished file at `source` and keep it under `key`."""

    def delete(self, key: str) -> None:
        """Remove the result; removing one that is not there is no error."""

    def local_path(self, key: str) -> Path | None:
        """A path this process can serve the result from, or None where results are not local files."""

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A URL anyone may GET (with Range) until it expires, or None where storage has no such URLs."""

    def stream(self, key: str) -> tuple[Iterator[bytes], int]:
        """The result's bytes in chunks, and its size."""
