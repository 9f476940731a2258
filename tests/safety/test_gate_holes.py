"""One regression test per hole the safety review of 63c8d62 found in the gate (issue 8),
each named after the behaviour that now holds. Real PostgreSQL, the real API over
TestClient and moto S3 through the minio client; screening results are written through
the real save path (`services.screen.service._save`) with chosen faces instead of
running the face engine, so each test sets up exactly the faces its hole needs.

Holes 1 and 2 (races) are proven with real threads in tests/safety/test_races.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from models import clock
from models.clock import utcnow
from models.repositories.media import MediaRepository
from services.core import outbox, runtime
from services.core.config import get_settings
from services.screen import service as screening
from storage.minio_store import MinioStore
from tests.flow import put_consent
from tests.lifecycle.support import landscape, upload_bytes
from tests.support import create_org, token
from workers.engine.types import Box, ScreenedFace

BOX: Box = (40, 140, 160, 40)
OTHER: Box = (40, 400, 160, 300)


def _pupil(client: TestClient, slt: dict[str, str], n: int, *, biometric: bool = True,
           website: bool = True) -> str:
    r = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": f"UPN{n:04d}", "given_name": f"Child{n}", "family_name": "Test",
        "year_group": "Year 5"})
    assert r.status_code == 201, r.text
    pupil_id: str = r.json()["id"]
    if biometric:
        r = client.post(f"/api/v1/pupils/{pupil_id}/biometric-consent", headers=slt,
                        json={"status": "granted", "by": "parent", "evidence_ref": f"f-{n}"})
        assert r.status_code == 201, r.text
    # Both example policies need consent to being photographed at all.
    put_consent(client, slt, pupil_id, "granted", channel="capture")
    if website:
        put_consent(client, slt, pupil_id, "granted", channel="website")
    return pupil_id


def _screen_as(media_id: str, faces: list[ScreenedFace]) -> None:
    """What the worker does, with the faces given instead of the engine's."""
    sessions, settings = runtime.sessions(), get_settings()
    claim = screening._claim(sessions, uuid.UUID(media_id))
    assert claim is not None
    screening._save(sessions, settings, uuid.UUID(media_id), claim, screening._Found(faces))


def matched(pupil: str, box: Box = BOX) -> ScreenedFace:
    return ScreenedFace(box, 0, "matched", pupil, 0.3)


@pytest.fixture
def school(client: TestClient) -> dict[str, Any]:
    create_org("school", policy="arts-service")
    return {"slt": token("school", "slt", "Head"), "slt2": token("school", "slt", "Deputy"),
            "staff": token("school", "staff"), "publisher": token("school", "publisher")}


def _published(client: TestClient, school: dict[str, Any], faces: list[ScreenedFace]
               ) -> tuple[str, str]:
    media_id = upload_bytes(client, school["staff"], landscape())
    _screen_as(media_id, faces)
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=school["publisher"],
                    json={"channel": "website"})
    assert r.status_code == 201, r.text
    return media_id, str(r.json()["url"])


def test_a_leaver_is_taken_down_at_once_and_never_published_again(
        client: TestClient, school: dict[str, Any]) -> None:
    pupil = _pupil(client, school["slt"], 1)
    media_id, url = _published(client, school, [matched(pupil)])
    assert client.get(url).status_code == 200
    r = client.patch(f"/api/v1/pupils/{pupil}", headers=school["slt"], json={"active": False})
    assert r.status_code == 200, r.text
    assert client.get(url).status_code == 410
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=school["publisher"],
                    json={"channel": "website"})
    assert r.status_code == 409
    assert any(c["code"] in ("pupil_left", "register_changed") for c in r.json()["reason_codes"])


def test_enrolling_a_look_alike_makes_earlier_matches_stale_and_blocked(
        client: TestClient, school: dict[str, Any], faces: Path) -> None:
    a = _pupil(client, school["slt"], 1)
    media_id, url = _published(client, school, [matched(a)])
    twin = _pupil(client, school["slt"], 2, website=False)
    photo = sorted((faces / "enrol" / "obama").iterdir())[0]
    r = client.post(f"/api/v1/pupils/{twin}/reference-photos", headers=school["slt"],
                    files={"file": (photo.name, photo.read_bytes())})
    assert r.status_code == 201, r.text
    # Screened against a gallery without the twin: blocked, held, not approvable.
    body = client.get(f"/api/v1/media/{media_id}", headers=school["slt"]).json()
    assert "register_changed" in [c["code"] for c in body["channels"]["website"]["reason_codes"]]
    public = client.get(url)
    assert public.status_code == 503 and public.headers["retry-after"]
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=school["slt"],
                    json={"channels": ["website"], "justification": "Checked it by eye, fine"})
    assert r.status_code == 409
    # Screened again, the face is now too alike to the twin to call: the copy goes.
    _screen_as(media_id, [ScreenedFace(BOX, 0, "uncertain", None, 0.33,
                                       candidates=((a, 0.33), (twin, 0.36)))])
    assert client.get(url).status_code == 410
    feed = client.get("/api/v1/takedowns", headers=school["publisher"]).json()
    assert [t["media_id"] for t in feed] == [media_id]


def test_a_face_unknown_before_a_pupil_was_enrolled_cannot_be_cleared_until_checked_again(
        client: TestClient, school: dict[str, Any], faces: Path) -> None:
    media_id = upload_bytes(client, school["staff"], landscape())
    _screen_as(media_id, [ScreenedFace(BOX, 0, "unknown", None, None)])
    pupil = _pupil(client, school["slt"], 1, website=False)
    photo = sorted((faces / "enrol" / "obama").iterdir())[0]
    assert client.post(f"/api/v1/pupils/{pupil}/reference-photos", headers=school["slt"],
                       files={"file": (photo.name, photo.read_bytes())}).status_code == 201
    review = client.get(f"/api/v1/review/{media_id}", headers=school["slt"]).json()
    face_id = review["faces"][0]["id"]
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=school["slt"], json={
        "kind": "approve", "channels": ["website"], "cleared_faces": [face_id],
        "justification": "An adult volunteer who agreed to be photographed"})
    assert r.status_code == 409, r.text


def test_regranting_biometric_consent_does_not_revive_old_matches(
        client: TestClient, school: dict[str, Any]) -> None:
    pupil = _pupil(client, school["slt"], 1)
    media_id, url = _published(client, school, [matched(pupil)])
    for status in ("withdrawn", "granted"):
        r = client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=school["slt"],
                        json={"status": status, "by": "parent", "evidence_ref": "letter"})
        assert r.status_code == 201, r.text
    assert client.get(url).status_code == 410
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=school["publisher"],
                    json={"channel": "website"})
    assert r.status_code == 409
    assert "register_changed" in [c["code"] for c in r.json()["reason_codes"]]


def test_a_face_close_to_two_pupils_cannot_be_cleared_and_either_withdrawal_finds_it(
        client: TestClient, school: dict[str, Any]) -> None:
    a = _pupil(client, school["slt"], 1)
    b = _pupil(client, school["slt"], 2)
    media_id = upload_bytes(client, school["staff"], landscape())
    _screen_as(media_id, [matched(a, OTHER), ScreenedFace(
        BOX, 0, "uncertain", None, 0.4, candidates=((a, 0.40), (b, 0.43)))])
    review = client.get(f"/api/v1/review/{media_id}", headers=school["slt"]).json()
    ambiguous = next(f["id"] for f in review["faces"] if f["status"] == "uncertain")
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=school["slt"], json={
        "kind": "approve", "channels": ["website"], "cleared_faces": [ambiguous],
        "justification": "Looks like nobody on the register to me"})
    assert r.status_code == 422, r.text
    # Blurred instead, it goes out; B's withdrawal then re-decides the medium.
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=school["slt"], json={
        "kind": "approve", "channels": ["website"],
        "justification": "Approved: only A is recognisable"})
    assert r.status_code == 201, r.text
    with runtime.sessions()() as session:
        found = session.execute(text(
            "SELECT count(*) FROM faces WHERE candidates::text LIKE :b"), {"b": f"%{b}%"}
        ).scalar_one()
    assert found == 1
    with runtime.sessions()() as session:
        org = session.execute(text("SELECT id FROM organisations")).scalar_one()
        ids = [m.id for m in MediaRepository(session).media_matching_pupil(org, uuid.UUID(b))]
    assert ids == [uuid.UUID(media_id)]


def test_the_approvals_endpoint_refuses_before_screening_finishes(
        client: TestClient, school: dict[str, Any]) -> None:
    media_id = upload_bytes(client, school["staff"], landscape())
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=school["slt"],
                    json={"channels": ["website"], "justification": "Fine for the website"})
    assert r.status_code == 409, r.text


def test_expired_consent_is_refused_when_served_at_midnight_in_the_school_time_zone(
        client: TestClient, school: dict[str, Any]) -> None:
    london = ZoneInfo("Europe/London")
    today = utcnow().astimezone(london).date()
    pupil = _pupil(client, school["slt"], 1, website=False)
    put_consent(client, school["slt"], pupil, "granted", channel="website")
    r = client.put(f"/api/v1/pupils/{pupil}/consents/website", headers=school["slt"], json={
        "status": "granted", "given_by": "guardian", "evidence_ref": "form",
        "expires_on": today.isoformat()})
    assert r.status_code == 200, r.text
    _, url = _published(client, school, [matched(pupil)])
    assert client.get(url).status_code == 200
    # One minute after local midnight; no beat job runs in this test.
    now = utcnow()
    local_midnight = (now.astimezone(london) + timedelta(days=1)).replace(
        hour=0, minute=1, second=0, microsecond=0)
    clock.travel(local_midnight - now)
    try:
        assert client.get(url).status_code == 410
        feed = client.get("/api/v1/takedowns", headers=school["publisher"]).json()
        assert "consent_expired" in feed[0]["reason"]
    finally:
        clock.reset()


def _dead_store() -> MinioStore:
    """A real client for an S3 endpoint where nothing listens: storage is down."""
    from tests.s3server import make_test_client

    return MinioStore(make_test_client("http://127.0.0.1:9"), "consentgate-test")


def test_a_biometric_withdrawal_commits_while_storage_is_down_and_erases_later(
        client: TestClient, school: dict[str, Any], faces: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pupil = _pupil(client, school["slt"], 1)
    photo = sorted((faces / "enrol" / "obama").iterdir())[0]
    assert client.post(f"/api/v1/pupils/{pupil}/reference-photos", headers=school["slt"],
                       files={"file": (photo.name, photo.read_bytes())}).status_code == 201
    up = runtime.store()
    monkeypatch.setattr(runtime, "store", _dead_store)
    r = client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=school["slt"],
                    json={"status": "withdrawn", "by": "parent", "evidence_ref": "letter"})
    assert r.status_code == 201, r.text
    assert r.json()["biometric_consent"] is False
    with runtime.sessions()() as session:
        templates = session.execute(text("SELECT count(*) FROM face_templates")).scalar_one()
        pending = session.execute(text(
            "SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar_one()
    assert (templates, pending) == (0, 1)
    assert up.count_versions("references/") >= 1
    # Storage is back: the outbox finishes the erasure.
    assert outbox.run_items(runtime.sessions(), up) == 1
    assert up.count_versions("references/") == 0


def test_a_failed_delete_of_a_taken_down_copy_is_retried_until_it_succeeds(
        client: TestClient, school: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    pupil = _pupil(client, school["slt"], 1)
    media_id, url = _published(client, school, [matched(pupil)])
    up = runtime.store()
    monkeypatch.setattr(runtime, "store", _dead_store)
    r = client.delete(f"/api/v1/media/{media_id}/publications/website",
                      headers=school["publisher"])
    assert r.status_code == 200, r.text
    assert client.get(url).status_code == 410
    assert up.count_versions("published/") == 1
    assert outbox.run_items(runtime.sessions(), up) == 1
    assert up.count_versions("published/") == 0


def test_the_takedown_feed_pages_by_cursor_without_missing_any(
        client: TestClient, school: dict[str, Any]) -> None:
    pupil = _pupil(client, school["slt"], 1)
    urls = [_published(client, school, [matched(pupil)])[1] for _ in range(3)]
    put_consent(client, school["slt"], pupil, "withdrawn", channel="website")
    assert all(client.get(u).status_code == 410 for u in urls)
    first = client.get("/api/v1/takedowns", headers=school["publisher"],
                       params={"limit": 2}).json()
    rest = client.get("/api/v1/takedowns", headers=school["publisher"],
                      params={"after": first[-1]["cursor"]}).json()
    cursors = [t["cursor"] for t in first + rest]
    assert len(cursors) == 3 and cursors == sorted(set(cursors))


def test_a_refused_publication_is_audited(client: TestClient, school: dict[str, Any]) -> None:
    pupil = _pupil(client, school["slt"], 1, website=False)
    media_id = upload_bytes(client, school["staff"], landscape())
    _screen_as(media_id, [matched(pupil)])
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=school["publisher"],
                    json={"channel": "website"})
    assert r.status_code == 409
    with runtime.sessions()() as session:
        details = session.execute(text(
            "SELECT details FROM audit_events WHERE action = 'publication.refused'")
        ).scalar_one()
    assert [c["code"] for c in details["reasons"]] == ["no_consent"]


def test_a_retried_publish_returns_the_live_copy_and_honours_its_idempotency_key(
        client: TestClient, school: dict[str, Any]) -> None:
    pupil = _pupil(client, school["slt"], 1)
    media_id = upload_bytes(client, school["staff"], landscape())
    _screen_as(media_id, [matched(pupil)])
    url = f"/api/v1/media/{media_id}/publications"
    key = {**school["publisher"], "Idempotency-Key": "pipeline-42"}
    first = client.post(url, headers=key, json={"channel": "website"})
    again = client.post(url, headers=key, json={"channel": "website"})
    plain = client.post(url, headers=school["publisher"], json={"channel": "website"})
    assert (first.status_code, again.status_code, plain.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == plain.json()["id"]
    other = client.post(url, headers=key, json={"channel": "newsletter"})
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    live = client.get("/api/v1/publications", headers=school["publisher"]).json()
    assert len(live) == 1


def test_slt_see_how_many_media_are_waiting_to_be_checked_again(
        client: TestClient, school: dict[str, Any], faces: Path) -> None:
    pupil = _pupil(client, school["slt"], 1)
    for _ in range(2):
        _screen_as(upload_bytes(client, school["staff"], landscape()), [matched(pupil)])
    assert client.get("/api/v1/rescreening", headers=school["slt"]).json() == {
        "stale": 0, "screened_with_faces": 2}
    photo = sorted((faces / "enrol" / "obama").iterdir())[0]
    assert client.post(f"/api/v1/pupils/{pupil}/reference-photos", headers=school["slt"],
                       files={"file": (photo.name, photo.read_bytes())}).status_code == 201
    assert client.get("/api/v1/rescreening", headers=school["slt"]).json() == {
        "stale": 2, "screened_with_faces": 2}
    assert client.get("/api/v1/rescreening", headers=school["staff"]).status_code == 403
