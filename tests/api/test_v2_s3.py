"""Scale-out shape: the server and a worker process share PostgreSQL and an S3-compatible bucket, and no
folder: clips reach clients from the bucket, by the sync call's bytes and the async call's link."""

from __future__ import annotations

import boto3
import requests

from tests.servers import Server

from .client import SMALL, generate, submit, wait_for


def test_clips_are_stored_in_s3_and_served_from_it(tmp_path, tiny_models, s3_server, pg_url):
    storage = {"storage_url": f"s3://{s3_server.bucket}/results", "s3_endpoint_url": s3_server.endpoint}
    server = Server(tmp_path / "s3", tiny_models, {"database_url": pg_url, "embedded_workers": "0", **storage})
    try:
        server.worker(results_dir=str(tmp_path / "worker-results"))
        server.start()
        api_key = server.create_key("10")

        request_id = submit(server.base, api_key, SMALL).json()["request_id"]
        wait_for(server.base, api_key, request_id, "COMPLETED")
        bucket = boto3.client("s3", endpoint_url=s3_server.endpoint)
        stored = bucket.get_object(Bucket=s3_server.bucket, Key=f"results/{request_id}.mp4")["Body"].read()

        link = requests.get(f"{server.base}/v2/requests/{request_id}", headers={"x-api-key": api_key},
                            timeout=30).json()["output"]
        hop = requests.get(link, allow_redirects=False, timeout=30)
        assert hop.status_code == 307 and hop.headers["location"].startswith(s3_server.endpoint)
        assert requests.get(link, timeout=30).content == stored
        part = requests.get(link, headers={"Range": "bytes=0-1023"}, timeout=30)
        assert part.status_code == 206 and part.content == stored[:1024]

        sync = generate(server.base, api_key, {**SMALL, "generate_audio": False})
        assert sync.status_code == 200 and sync.headers["content-type"] == "video/mp4"
        key = f"results/{sync.headers['x-request-id']}.mp4"
        assert sync.content == bucket.get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
        assert int(sync.headers["content-length"]) == len(sync.content)
        assert not any((tmp_path / "s3").glob("results/*.mp4")) and not (tmp_path / "worker-results").exists()
    finally:
        server.stop()
