"""Where finished clips are kept, behind one interface: a local folder (the embedded default) or an
S3-compatible bucket shared by servers and workers on other machines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import ResultStorage
from .local import LocalStorage
from .s3 import S3Storage
from .urls import parse_s3_url

if TYPE_CHECKING:
    from ..config import Settings


def open_storage(url: str | None, results_dir: Path, *, endpoint_url: str | None = None,
                 region: str | None = None) -> ResultStorage:
    """`s3://bucket[/prefix]` for a bucket, None for the local results folder."""
    if url is None:
        return LocalStorage(results_dir)
    bucket, prefix = parse_s3_url(url)
    return S3Storage(bucket, prefix, endpoint_url=endpoint_url, region=region)


def storage_for(settings: Settings) -> ResultStorage:
    return open_storage(
        settings.storage_url, settings.results, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
    )


__all__ = ["LocalStorage", "ResultStorage", "S3Storage", "open_storage", "parse_s3_url", "storage_for"]
