"""Fixtures for the fault tests: PostgreSQL and Redis of the suite, an S3 server in a
child process, the API in this process pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import TEST_BROKER_URL
from tests.faults.support import S3Server, app_env, environment


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "moto.log")
    try:
        store = server.store()
        store._ensure_bucket()
        store.enable_versioning()
        yield server
    finally:
        server.close()


@pytest.fixture
def fault_client(clean_db: None, s3: S3Server) -> Iterator[TestClient]:
    """The API on the suite's database and broker, storing in the moto child."""
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()
    from services.app import create_app

    with environment(app_env(s3.endpoint)), TestClient(create_app()) as client:
        yield client
