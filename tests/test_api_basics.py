"""Auth, roles, isolation between organisations, and bad input that leaves nothing behind."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from models.orm import Media
from services.core import runtime
from tests.support import create_org, token


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "x.jpg",
            **form: str):
    fields = {"event": "Sports day", "purpose": "Curriculum", "device": "school", **form}
    return client.post("/api/v1/media", headers=headers, data=fields,
                       files={"file": (name, data)})


def _media_rows() -> int:
    with runtime.sessions()() as session:
        return int(session.scalar(select(func.count()).select_from(Media)) or 0)


def _objects() -> int:
    return sum(1 for _ in runtime.store().list_keys("originals/"))


def test_requests_without_a_valid_token_get_401_json(client: TestClient) -> None:
    r = client.get("/api/v1/pupils")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    r = client.get("/api/v1/pupils", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_roles_are_enforced(client: TestClient) -> None:
    create_org("school-a", policy="primary-school")
    staff = token("school-a", "staff")
    publisher = token("school-a", "publisher")
    pupil = {"external_id": "A1", "given_name": "Ann", "family_name": "Lee", "year_group": "R"}
    assert client.post("/api/v1/pupils", headers=staff, json=pupil).status_code == 403
    assert client.post("/api/v1/pupils", headers=publisher, json=pupil).status_code == 403
    assert client.get("/api/v1/review", headers=staff).status_code == 403
    r = _upload(client, publisher, _jpeg())
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


def test_no_reading_across_organisations(client: TestClient) -> None:
    create_org("school-a")
    create_org("school-b")
    slt_a, slt_b = token("school-a", "slt"), token("school-b", "slt")
    r = client.post("/api/v1/pupils", headers=slt_a, json={
        "external_id": "A1", "given_name": "Ann", "family_name": "Lee", "year_group": "R"})
    pupil_id = r.json()["id"]
    assert client.get(f"/api/v1/pupils/{pupil_id}", headers=slt_b).status_code == 404
    assert client.get("/api/v1/pupils", headers=slt_b).json() == []
    media_id = _upload(client, token("school-a", "staff"), _jpeg()).json()["id"]
    assert client.get(f"/api/v1/media/{media_id}", headers=slt_b).status_code == 404
    assert client.get(f"/api/v1/media/{media_id}", headers=slt_a).status_code == 200


def test_staff_see_only_their_own_uploads(client: TestClient) -> None:
    create_org("school-a")
    alice, bob = token("school-a", "staff", "alice"), token("school-a", "staff", "bob")
    media_id = _upload(client, alice, _jpeg()).json()["id"]
    assert client.get(f"/api/v1/media/{media_id}", headers=alice).status_code == 200
    assert client.get(f"/api/v1/media/{media_id}", headers=bob).status_code == 404
    assert [m["id"] for m in client.get("/api/v1/media", headers=bob).json()] == []


def test_upload_is_queued_and_blocked_until_screened(client: TestClient) -> None:
    create_org("school-a", policy="primary-school")
    staff = token("school-a", "staff")
    r = _upload(client, staff, _jpeg(), captured_on="2026-06-01")
    assert r.status_code == 202
    body = client.get(f"/api/v1/media/{r.json()['id']}", headers=staff).json()
    assert body["status"] == "queued"
    # Primary school policy: curriculum images are kept 365 days from capture.
    assert body["retention_until"] == "2027-06-01"
    for decision in body["channels"].values():
        assert decision["allowed"] is False
        assert "screening has not finished yet" in decision["reasons"]


def test_personal_device_upload_tells_the_uploader_to_delete_the_original(
    client: TestClient,
) -> None:
    create_org("school-a")
    r = _upload(client, token("school-a", "staff"), _jpeg(), device="personal")
    assert r.status_code == 202
    assert any("delete the original" in n for n in r.json()["notices"])


def test_bad_uploads_get_clear_errors_and_leave_nothing(client: TestClient) -> None:
    create_org("school-a")
    staff = token("school-a", "staff")
    cases = [
        (b"GIF89a" + b"\0" * 100, "x.jpg", 415, "unsupported_media_type"),
        (b"%PDF-1.7\n" + b"\0" * 100, "photo.jpg", 415, "unsupported_media_type"),
        (_jpeg()[:200], "cut.jpg", 422, "undecodable"),
        (b"\0\0\0\x18ftypmp42" + b"\0" * 500, "clip.mp4", 422, "undecodable"),
        (b"", "empty.jpg", 422, "invalid"),
    ]
    for data, name, status, code in cases:
        r = _upload(client, staff, data, name=name)
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"] == code, (name, r.json())
        assert r.json()["detail"]
    r = client.post("/api/v1/media", headers=staff, data={"event": "x", "device": "school"},
                    files={"file": ("a.jpg", _jpeg())})
    assert r.status_code == 422
    r = _upload(client, staff, _jpeg(), device="borrowed")
    assert r.status_code == 422
    assert _media_rows() == 0
    assert _objects() == 0


def test_too_large_upload_is_refused_with_413(client: TestClient, monkeypatch) -> None:
    from services.core.config import get_settings

    create_org("school-a")
    staff = token("school-a", "staff")
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 10_000)
    r = _upload(client, staff, _jpeg(400, 400))
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    # A decompression bomb: tiny file, 40000 x 40000 pixels claimed.
    bomb = io.BytesIO()
    Image.new("1", (40000, 40000)).save(bomb, "PNG")
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 50 * 1024 * 1024)
    r = _upload(client, staff, bomb.getvalue(), name="bomb.png")
    assert r.status_code == 413
    assert _media_rows() == 0
    assert _objects() == 0


def test_unknown_channel_and_missing_media_are_clear_errors(client: TestClient) -> None:
    create_org("school-a")
    publisher = token("school-a", "publisher")
    r = client.post("/api/v1/media/00000000-0000-0000-0000-000000000000/publications",
                    headers=publisher, json={"channel": "website"})
    assert r.status_code == 404
    r = client.post("/api/v1/media/00000000-0000-0000-0000-000000000000/publications",
                    headers=publisher, json={"channel": "billboard"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "channel"
