"""Where finished clips are kept. One interface; a local folder is the embedded default."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Protocol


class ResultStorage(Protocol):
    def put(self, source: Path, key: str) -> None:
        """Take ownership of the finished file at `source` and keep it under `key`."""

    def local_path(self, key: str) -> Path:
        """A path this process can serve the result from."""

    def delete(self, key: str) -> None: ...


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

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
