"""Issue 12, least privilege: the publisher role sees only what publishing needs, and
error bodies and `media.error` carry plain words, never hosts, ports, buckets or keys.

The faces are the rows screening would write (as tests/safety/support.py does), on a
real upload, so the test needs no face engine run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from models.db import transaction
from models.orm import Face, MatchStatus, Media, MediaStatus
from services.core import runtime
from services.core.config import get_settings
from services.screen.service import mark_failed
from tests.badinput.inputs import jpeg
from tests.support import create_org, token

PUBLISHER_FIELDS = {"id", "kind", "status", "channels", "publications"}


@pytest.fixture
def school(client: TestClient) -> dict[str, Any]:
    create_org("priv", "primary-school")
    heads = {r: token("priv", r, f"{r} person") for r in ("staff", "slt", "publisher")}
    pupil = client.post("/api/v1/pupils", headers=heads["slt"], json={
        "external_id": "LP-1", "given_name": "Bea", "family_name": "Private",
        "year_group": "Y2"}).json()["id"]
    r = client.post("/api/v1/media", headers=heads["staff"],
                    files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                    data={"event": "Secret Event Name", "purpose": "publicity",
                          "device": "school"})
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    with transaction(runtime.sessions()) as session:
        media = session.get(Media, uuid.UUID(media_id))
        assert media is not None
        media.status = MediaStatus.SCREENED.value
        session.add(Face(media_id=media.id, frame=0, top=8, right=40, bottom=32, left=16,
                         pupil_id=uuid.UUID(pupil), distance=0.3141,
                         match_status=MatchStatus.MATCHED.value,
                         candidates=[{"pupil_id": pupil, "distance": 0.2718}]))
    return {"heads": heads, "pupil": pupil, "media": media_id}


def test_the_publisher_sees_only_id_kind_status_channel_decisions_and_publications(
        client: TestClient, school: dict[str, Any]) -> None:
    heads, pupil, media_id = school["heads"], school["pupil"], school["media"]
    one = client.get(f"/api/v1/media/{media_id}", headers=heads["publisher"])
    listed = client.get("/api/v1/media", headers=heads["publisher"])
    assert one.status_code == listed.status_code == 200
    for body in (one.json(), listed.json()[0]):
        assert set(body) == PUBLISHER_FIELDS
        assert body["channels"]["website"]["allowed"] is False
        assert body["channels"]["website"]["reasons"]
    for text in (one.text, listed.text):
        for secret in (pupil, "0.3141", "0.2718", "Secret Event Name", "staff person",
                       "distance", "faces", "uploader"):
            assert secret not in text
    # SLT still sees it all.
    slt = client.get(f"/api/v1/media/{media_id}", headers=heads["slt"]).json()
    assert slt["faces"][0]["pupil_id"] == pupil and slt["uploader"] == "staff person"


def test_a_refused_publish_tells_the_publisher_why_without_naming_the_pupil(
        client: TestClient, school: dict[str, Any]) -> None:
    r = client.post(f"/api/v1/media/{school['media']}/publications",
                    headers=school["heads"]["publisher"], json={"channel": "website"})
    assert r.status_code == 409
    assert r.json()["reasons"] and school["pupil"] not in r.text


def test_media_error_keeps_no_host_port_bucket_or_key_and_the_publisher_sees_none(
        client: TestClient, school: dict[str, Any]) -> None:
    media_id = uuid.UUID(school["media"])
    with transaction(runtime.sessions()) as session:
        media = session.get(Media, media_id)
        assert media is not None
        media.status = MediaStatus.QUEUED.value
        key = media.original_key
    raw = (f"gave up after 6 retries: HTTPConnectionPool(host='minio.internal', port=9000): "
           f"Max retries exceeded with url: /consentgate-test/{key}")
    mark_failed(runtime.sessions(), get_settings(), media_id, raw)
    slt = client.get(f"/api/v1/media/{media_id}", headers=school["heads"]["slt"]).json()
    assert slt["status"] == "failed" and slt["error"].startswith("gave up after 6 retries")
    pub = client.get(f"/api/v1/media/{media_id}", headers=school["heads"]["publisher"])
    for text in (str(slt), pub.text):
        for secret in ("minio.internal", "9000", "consentgate-test", key, str(media_id) + ".jpg"):
            assert secret not in text
    assert "gave up" not in pub.text


@pytest.fixture
def dead_store(clean_db: None) -> Iterator[TestClient]:
    """The app with its object store on a port where nothing listens."""
    from services.app import create_app
    from tests.support import free_port

    saved = os.environ["CONSENTGATE_MINIO_ENDPOINT"]
    os.environ["CONSENTGATE_MINIO_ENDPOINT"] = f"127.0.0.1:{free_port()}"
    runtime.reset()
    try:
        with TestClient(create_app()) as test_client:
            yield test_client
    finally:
        os.environ["CONSENTGATE_MINIO_ENDPOINT"] = saved
        runtime.reset()


def test_a_storage_outage_answers_503_in_plain_words_without_host_port_bucket_or_key(
        dead_store: TestClient) -> None:
    create_org("outage", "primary-school")
    staff = token("outage", "staff")
    endpoint = os.environ["CONSENTGATE_MINIO_ENDPOINT"]
    r = dead_store.post("/api/v1/media", headers=staff,
                        files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                        data={"event": "Fair", "purpose": "publicity", "device": "school"})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "storage_unavailable" and "try again" in body["detail"]
    host, port = endpoint.split(":")
    for secret in (host, port, "consentgate-test", "originals/"):
        assert secret not in r.text
