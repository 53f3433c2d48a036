"""Results in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...) through boto3.

Credentials come the way boto3 finds them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an
instance role); ltxserve's settings name only the bucket, the endpoint and the region.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            # Standard retries back off on throttling and 5xx; path style works with every S3-alike.
            config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 5},
                          s3={"addressing_style": "path"}),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, source: Path, key: str) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(key), ExtraArgs={"ContentType": "video/mp4"})
        Path(source).unlink()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def local_path(self, key: str) -> None:
        return None

    def presigned_url(self, key: str, expires_s: int) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=max(1, int(expires_s))
        )

    def stream(self, key: str) -> tuple[Iterator[bytes], int]:
        answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        return answer["Body"].iter_chunks(_CHUNK), answer["ContentLength"]
