"""Storage URLs, parsed without loading a storage client."""

from __future__ import annotations


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix of `s3://bucket[/prefix]`; ValueError for anything else."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket:
        raise ValueError(f"storage URL {url!r}: use s3://bucket[/prefix], or leave it unset for local files")
    return bucket, prefix
