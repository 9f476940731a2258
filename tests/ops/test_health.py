"""Liveness and readiness as an orchestrator sees them, with the real database, Redis and
S3 server; a dependency is "down" by pointing at a port where nothing listens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from models.db import session_factory
from services.core import runtime
from services.core.celery_app import app as celery_app
from storage.minio_store import MinioStore
from tests.lifecycle.support import landscape
from tests.s3server import make_test_client
from tests.support import create_org, token

CLOSED = "127.0.0.1:9"


def _dead_store() -> MinioStore:
    return MinioStore(make_test_client(f"http://{CLOSED}"), "consentgate-test")


@pytest.fixture
def no_bucket(s3_endpoint: str) -> MinioStore:
    """The S3 server answers, but the configured bucket was never created."""
    return MinioStore(make_test_client(s3_endpoint), "bucket-nobody-made")


@pytest.fixture
def school(client: TestClient) -> dict[str, Any]:
    create_org("school", policy="arts-service")
    return {"slt": token("school", "slt"), "staff": token("school", "staff")}


def _no_hosts(body: str) -> None:
    for leak in ("127.0.0.1", ":9", "consentgate-test", "bucket-nobody-made", "testing"):
        assert leak not in body, body


def test_ready_when_every_part_answers(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["failed"] == []
    assert {p: c["result"] for p, c in body["checks"].items()} == {
        "database": "ok", "broker": "ok", "store": "ok"}


def test_not_ready_when_the_store_is_down_but_still_alive(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "store", _dead_store)
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready" and body["failed"] == ["store"]
    assert body["checks"]["store"]["result"] == "down"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert "object store is not answering" in body["detail"]
    _no_hosts(r.text)
    # Liveness checks nothing else: the process is up.
    assert client.get("/healthz").json() == {"status": "ok"}


def test_not_ready_when_the_bucket_is_missing(client: TestClient, no_bucket: MinioStore,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "store", lambda: no_bucket)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["store"]["result"] == "bucket_missing"
    assert "bucket does not exist" in r.json()["detail"]
    _no_hosts(r.text)


def test_not_ready_when_the_database_or_the_broker_is_down(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_db = session_factory(f"postgresql+psycopg://postgres@{CLOSED}/nothing")
    monkeypatch.setattr(runtime, "sessions", lambda: dead_db)
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["failed"] == ["database"]
    monkeypatch.undo()
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://{CLOSED}/0")
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["failed"] == ["broker"], r.text
    _no_hosts(r.text)


def test_a_missing_bucket_makes_uploads_and_enrolments_503_and_writes_nothing(
        client: TestClient, school: dict[str, Any], no_bucket: MinioStore,
        faces: Path) -> None:
    client.app.dependency_overrides[runtime.store] = lambda: no_bucket  # type: ignore[attr-defined]
    try:
        r = client.post("/api/v1/media", headers=school["staff"],
                        data={"event": "Concert", "purpose": "publicity", "device": "school"},
                        files={"file": ("stage.jpg", landscape())})
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "bucket_missing"
        assert r.headers["retry-after"]
        _no_hosts(r.text)

        r = client.post("/api/v1/pupils", headers=school["slt"], json={
            "external_id": "UPN0001", "given_name": "Ann", "family_name": "Lee",
            "year_group": "Year 5"})
        pupil = r.json()["id"]
        assert client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=school["slt"],
                           json={"status": "granted", "by": "parent",
                                 "evidence_ref": "f"}).status_code == 201
        photo = sorted((faces / "enrol" / "obama").iterdir())[0]
        r = client.post(f"/api/v1/pupils/{pupil}/reference-photos", headers=school["slt"],
                        files={"file": (photo.name, photo.read_bytes())})
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "bucket_missing"
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    with runtime.sessions()() as session:
        counts = [session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("media", "reference_photos", "face_templates")]
    assert counts == [0, 0, 0]

