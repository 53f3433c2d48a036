"""Results as files in one folder."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} leaves the storage folder")
        return path

    def put(self, source: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another filesystem: copy next to the target, then rename, so a reader never sees half a file.
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            Path(source).unlink()

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def presigned_url(self, key: str, expires_s: int) -> None:
        return None

    def stream(self, key: str) -> tuple[Iterator[bytes], int]:
        path = self._path(key)
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    yield chunk

        return chunks(), size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
