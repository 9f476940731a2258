"""Test set-up: real PostgreSQL, Redis and an S3 server (moto), configured through the
same CONSENTGATE_* settings production uses.

The environment is set before any application module is imported, because the
Celery app reads its broker URL at import time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "faces"
FACES_MISSING = (
    "../shared/faces not found; run `make test-data` for how to get the public test images"
)

TEST_DATABASE_URL = os.environ.get(
    "CONSENTGATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_BROKER_URL = os.environ.get("CONSENTGATE_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")

os.environ.update(
    {
        "CONSENTGATE_ENVIRONMENT": "production",
        "CONSENTGATE_DATABASE_URL": TEST_DATABASE_URL,
        "CONSENTGATE_BROKER_URL": TEST_BROKER_URL,
        "CONSENTGATE_TEMPLATE_KEY": Fernet.generate_key().decode(),
        "CONSENTGATE_STORAGE_BACKEND": "minio",
        "CONSENTGATE_MINIO_ACCESS_KEY": "testing",
        "CONSENTGATE_MINIO_SECRET_KEY": "testing-secret-123",
        "CONSENTGATE_MINIO_BUCKET": "consentgate-test",
        "CONSENTGATE_MINIO_REGION": "us-east-1",
        "CONSENTGATE_PUBLIC_BASE_URL": "http://testserver",
        "CONSENTGATE_DATA_DIR": str(ROOT / ".pytest-data"),
        # Webhook retries: 3 attempts, 0.2 s then 0.4 s apart, so giving up takes < 1 s.
        "CONSENTGATE_WEBHOOK_MAX_ATTEMPTS": "3",
        "CONSENTGATE_WEBHOOK_BACKOFF_S": "0.2",
        "CONSENTGATE_WEBHOOK_TIMEOUT_S": "5",
    }
)

import pytest  # noqa: E402
import redis  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

# One definition of the browser fixtures (session-scoped: one Chromium for every module
# that uses them; two Playwright instances in one process refuse to start).
pytest_plugins = ["tests.s3server", "tests.web.browser"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The Celery worker is session-scoped: once started it consumes every upload, so tests
    # that see an upload still queued must run before the first test that starts it.
    items.sort(key=lambda item: "celery_worker" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def faces() -> Path:
    if not FACES.is_dir():
        pytest.skip(FACES_MISSING)
    return FACES


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """A fresh schema built by the real migrations.

    Two test runs on one machine share the database and the broker, so a run
    holds a PostgreSQL advisory lock for its whole session: a second run waits
    instead of dropping the schema under the first.
    """
    from models.migrate import upgrade

    lock_engine = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
    lock = lock_engine.connect()
    lock.execute(text("SELECT pg_advisory_lock(hashtext('consentgate-test-suite'))"))
    lock.commit()
    try:
        engine = create_engine(TEST_DATABASE_URL, poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(TEST_DATABASE_URL)
        yield TEST_DATABASE_URL
    finally:
        lock.close()
        lock_engine.dispose()


@pytest.fixture(scope="session")
def app_env(database: str, s3_endpoint: str) -> Iterator[None]:
    """Point the application at the test servers."""
    from services.core import runtime
    from storage.minio_store import MinioStore
    from tests.s3server import make_test_client

    os.environ["CONSENTGATE_MINIO_ENDPOINT"] = s3_endpoint
    runtime.reset()
    store = MinioStore(make_test_client(s3_endpoint), "consentgate-test", create_bucket=True)
    store.enable_versioning()
    redis.Redis.from_url(TEST_BROKER_URL).flushdb()
    yield
    runtime.reset()


@pytest.fixture
def clean_db(app_env: None) -> Iterator[None]:
    """Each test starts with empty tables and an empty bucket."""
    from services.core import runtime

    for prefix in ("originals/", "references/", "published/", "derivatives/"):
        runtime.store().delete_prefix(prefix)
    yield
    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname='public' "
                 "AND tablename <> 'alembic_version'")
        ).scalars().all()
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def celery_worker(app_env: None) -> Iterator[None]:
    """A real Celery worker thread consuming from the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from workers.celery_app import app

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False,
                      loglevel="WARNING", shutdown_timeout=30):
        yield


@pytest.fixture
def client(clean_db: None) -> Iterator[TestClient]:
    from services.app import create_app

    with TestClient(create_app()) as test_client:
        yield test_client
