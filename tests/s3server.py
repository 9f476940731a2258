"""Pytest plugin: an in-process S3 server (moto) for the MinIO backend.

Register with ``pytest_plugins = ["tests.s3server"]``. The server listens on
127.0.0.1 only and accepts any credentials; these tests talk to it through the
real minio client, as production talks to MinIO.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject
from moto.server import ThreadedMotoServer

from storage.minio_store import MinioStore, make_client

ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret-123"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """'127.0.0.1:PORT' of a moto S3 server running for the whole session."""
    # werkzeug logs every request at INFO to stderr; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


def make_test_client(endpoint: str) -> Minio:
    # Short timeouts so a broken test server fails the test instead of hanging it.
    return make_client(
        endpoint, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION,
        connect_timeout=2.0, read_timeout=30.0, retries=0,
    )


@pytest.fixture
def minio_client(s3_endpoint: str) -> Minio:
    return make_test_client(s3_endpoint)


def new_bucket(client: Minio, *, versioned: bool) -> MinioStore:
    """A MinioStore on a fresh, uniquely named bucket."""
    store = MinioStore(client, f"test-{uuid.uuid4().hex[:20]}", create_bucket=True)
    if versioned:
        store.enable_versioning()
    return store


def drop_bucket(client: Minio, bucket: str) -> None:
    """Remove a test bucket and everything in it, so moto's memory does not grow."""
    victims = [
        DeleteObject(obj.object_name, obj.version_id)
        for obj in client.list_objects(bucket, recursive=True, include_version=True)
        if obj.object_name is not None
    ]
    errors = list(client.remove_objects(bucket, victims))
    assert not errors, errors
    client.remove_bucket(bucket)


@pytest.fixture
def minio_store(minio_client: Minio) -> Iterator[MinioStore]:
    """A MinioStore on a fresh bucket with versioning enabled, as in production."""
    store = new_bucket(minio_client, versioned=True)
    yield store
    drop_bucket(minio_client, store.bucket)
