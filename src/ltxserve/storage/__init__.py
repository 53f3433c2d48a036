"""Where finished clips are kept, behind one interface: a local folder (the embedded default) or an
S3-compatible bucket shared by servers and workers on other machines."""

from __future__ import annotations

from pathlib import Path

from .base import ResultStorage
from .local import LocalStorage
from .s3 import S3Storage


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix of `s3://bucket[/prefix]`; ValueError for anything else."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ValueError(f"storage URL {url!r}: use s3://bucket[/prefix], or leave it unset for local files")
    return bucket, prefix


def open_storage(url: str | None, results_dir: Path, *, endpoint_url: str | None = None,
                 region: str | None = None) -> ResultStorage:
    """`s3://bucket[/prefix]` for a bucket, None for the local results folder."""
    if url is None:
        return LocalStorage(results_dir)
    bucket, prefix = parse_s3_url(url)
    return S3Storage(bucket, prefix, endpoint_url=endpoint_url, region=region)


__all__ = ["LocalStorage", "ResultStorage", "S3Storage", "open_storage", "parse_s3_url"]
