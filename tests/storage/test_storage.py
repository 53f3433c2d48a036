"""Both result stores through the one interface; S3 against a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError

from ltxserve.storage import LocalStorage, S3Storage, open_storage


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "results")
    server = request.getfixturevalue("s3_server")
    return open_storage(f"s3://{server.bucket}/clips", tmp_path, endpoint_url=server.endpoint)


def test_put_stream_and_delete(storage, tmp_path):
    data = bytes(range(256)) * 5000
    source = tmp_path / "work.mp4"
    source.write_bytes(data)
    storage.put(source, "job-1.mp4")
    assert not source.exists(), "the store takes ownership of the finished file"
    chunks, size = storage.stream("job-1.mp4")
    assert size == len(data) and b"".join(chunks) == data
    storage.delete("job-1.mp4")
    storage.delete("job-1.mp4")  # deleting what is gone is no error
    with pytest.raises((FileNotFoundError, ClientError)):  # the local folder's error, or S3's NoSuchKey
        b"".join(storage.stream("job-1.mp4")[0])


def test_s3_presigned_urls_serve_whole_files_and_ranges(s3_server, tmp_path):
    storage = open_storage(f"s3://{s3_server.bucket}", tmp_path, endpoint_url=s3_server.endpoint)
    assert isinstance(storage, S3Storage) and storage.local_path("x") is None
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"0123456789" * 100)
    storage.put(source, "clip.mp4")
    url = storage.presigned_url("clip.mp4", 60)
    assert url.startswith(s3_server.endpoint) and "Signature" in url
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == b"0123456789" * 100
    part = requests.get(url, headers={"Range": "bytes=5-14"}, timeout=30)
    assert part.status_code == 206 and part.content == b"5678901234"


def test_local_keys_cannot_leave_the_folder(tmp_path):
    storage = LocalStorage(tmp_path / "results")
    with pytest.raises(ValueError, match="leaves the storage folder"):
        storage.local_path("../outside.mp4")
    assert LocalStorage(tmp_path).presigned_url("a.mp4", 60) is None


def test_storage_urls_are_checked(tmp_path):
    assert isinstance(open_storage(None, tmp_path), LocalStorage)
    for wrong in ("gs://bucket", "s3://", "s3:///prefix"):
        with pytest.raises(ValueError, match="use s3://bucket"):
            open_storage(wrong, tmp_path)
