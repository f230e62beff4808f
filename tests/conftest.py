"""Shared fixtures: moto's real HTTP server on an ephemeral loopback port (never in-process
patching of botocore), a temp SQLite index, and the service layer wired to both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's server on an ephemeral loopback port, or the S3-compatible endpoint named by
    ``INFINSTOR_TEST_S3_ENDPOINT`` (MinIO, LocalStack, Ceph RGW...: the suite then checks
    this tool against that implementation; its credentials come from
    ``INFINSTOR_TEST_S3_ACCESS_KEY``/``_SECRET_KEY``, default ``testing``)."""
    # Dummy credentials so nothing can ever reach real AWS from the tests.
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ.get("INFINSTOR_TEST_S3_ACCESS_KEY", "testing")
    os.environ["AWS_SECRET_ACCESS_KEY"] = os.environ.get("INFINSTOR_TEST_S3_SECRET_KEY", "testing")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)
    external = os.environ.get("INFINSTOR_TEST_S3_ENDPOINT")
    if external:
        os.environ["AWS_ENDPOINT_URL"] = external
        yield external
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    yield endpoint
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3) -> str:
    """A fresh bucket with versioning enabled."""
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def index_url(tmp_path) -> str:
    return "sqlite:///" + str(tmp_path / "index.sqlite")


@pytest.fixture
def service(index_url: str, s3_endpoint: str):
    from infinstor_jlab.index import open_index
    from infinstor_jlab.services import InfinstorService

    index = open_index(index_url)
    yield InfinstorService(index, s3_endpoint_url=s3_endpoint)
    index.close()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL cluster (Debian's binaries, initdb + pg_ctl in a temp dir), one per
    test process; skipped where PostgreSQL is not installed (``.ci/run`` installs it)."""
    from pg_server import PostgresServer, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return pg_server.new_database()
