"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1 (port chosen by the OS), with
one bucket, and the s3fs storage options that reach it. Nothing reaches beyond loopback."""

from __future__ import annotations

import pytest

from conftest import require

BUCKET = "uploads"


@pytest.fixture(scope="module")
def s3():
    require("s3fs")
    server_mod = require("moto.server")
    boto3 = require("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}, "skip_instance_cache": True}
    try:
        yield client, options
    finally:
        server.stop()


def put(client, name: str, data: bytes) -> str:
    """Store ``data`` as the object ``name`` in BUCKET (through the fixture's boto3 client); its s3:// URL."""
    client.put_object(Bucket=BUCKET, Key=name, Body=data)
    return f"s3://{BUCKET}/{name}"
