"""Regressions of issue 12's bad-input and least-privilege holes, each named after the
behaviour (PostgreSQL and the S3 server; the bad-input suite in tests/badinput runs the
request shapes on both backends)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.orm import Media, Pupil
from services.core import runtime, validate
from services.core.errors import scrub
from tests.badinput.inputs import jpeg
from tests.support import create_org, token
from tests.web.test_pages import HTML, _key, sign_in


def _media_count() -> int:
    with runtime.sessions()() as session:
        return int(session.scalar(select(func.count()).select_from(Media)) or 0)


def test_a_huge_offset_on_the_media_list_is_a_422_not_a_500(client: TestClient) -> None:
    create_org("school", "primary-school")
    staff = token("school", "staff")
    for offset in (10**30, 2**63, validate.MAX_OFFSET + 1):
        r = client.get(f"/api/v1/media?offset={offset}", headers=staff)
        assert r.status_code == 422 and r.json()["error"] == "invalid_paging", r.text
    assert client.get(f"/api/v1/media?offset={validate.MAX_OFFSET}", headers=staff).json() == []


@pytest.mark.parametrize("when", ["9999-12-31", "3000-01-01", "0001-01-01", "1989-12-31"])
def test_an_implausible_captured_on_is_a_422_naming_it_not_a_500_or_a_wrong_retention(
        client: TestClient, when: str) -> None:
    create_org("school", "primary-school")
    r = client.post("/api/v1/media", headers=token("school", "staff"),
                    files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                    data={"event": "Fair", "purpose": "publicity", "device": "school",
                          "captured_on": when})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "implausible_date" and r.json()["field"] == "captured_on"
    assert _media_count() == 0


def test_captured_on_tomorrow_is_accepted_for_a_camera_clock_ahead_of_the_school(
        client: TestClient) -> None:
    create_org("school", "primary-school")
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = client.post("/api/v1/media", headers=token("school", "staff"),
                    files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                    data={"event": "Fair", "purpose": "publicity", "device": "school",
                          "captured_on": tomorrow})
    assert r.status_code == 202, r.text


def test_a_reference_photo_that_is_not_an_image_is_a_415_not_a_500(
        client: TestClient) -> None:
    create_org("school", "primary-school")
    slt = token("school", "slt")
    pupil = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": "R1", "given_name": "Ray", "family_name": "Photo",
        "year_group": "Y1"}).json()["id"]
    assert client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=slt, json={
        "status": "granted", "by": "parent", "evidence_ref": "form 3"}).status_code == 201
    r = client.post(f"/api/v1/pupils/{pupil}/reference-photos", headers=slt,
                    files={"file": ("me.jpg", b"GIF89a" + b"\x00" * 100, "image/jpeg")})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type", r.text


def test_a_nul_in_a_name_on_the_register_page_shows_the_page_with_the_error_not_a_500(
        client: TestClient) -> None:
    create_org("school", "primary-school")
    slt = token("school", "slt")
    csrf = sign_in(client, _key(slt))
    r = client.post("/register", headers={**HTML, "Origin": "http://testserver"},
                    data={"external_id": "N1", "given_name": "Nu\x00l", "family_name": "Byte",
                          "year_group": "Y3", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 422, r.text[:300]
    assert "given_name contains a NUL byte" in r.text
    with runtime.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(Pupil)) == 0


def test_invalid_utf8_in_an_upload_field_is_refused_naming_the_field_not_stored_garbled(
        client: TestClient) -> None:
    create_org("school", "primary-school")
    r = client.post("/api/v1/media", headers=token("school", "staff"),
                    files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                    data={"event": b"Sch\xf6ol fair", "purpose": "publicity", "device": "school"})
    assert r.status_code == 422 and r.json() == {
        "error": "invalid_text", "detail": "event is not valid UTF-8 text", "field": "event"}
    assert _media_count() == 0


# Latin-1 letters (which Starlette's fallback would garble) and characters beyond it.
TYPED = "Zo\u00eb\u2019s caf\u00e9 \u2013 F\u00eate"


def test_valid_accents_in_an_upload_field_are_kept_as_typed(client: TestClient) -> None:
    create_org("school", "primary-school")
    staff = token("school", "staff")
    r = client.post("/api/v1/media", headers=staff,
                    files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                    data={"event": TYPED, "purpose": "publicity",
                          "device": "school"})
    assert r.status_code == 202, r.text
    body = client.get(f"/api/v1/media/{r.json()['id']}", headers=staff).json()
    assert body["event"] == TYPED


def test_error_text_shown_to_people_keeps_no_host_port_url_or_key() -> None:
    raw = ("gave up after 6 retries: HTTPConnectionPool(host='10.1.2.3', port=9000): Max "
           "retries exceeded with url: /bucket/originals/org/abc.jpg; at "
           "http://minio.school.internal:9000/bucket and db.school.internal:5432")
    shown = scrub(raw)
    assert shown.startswith("gave up after 6 retries")
    for secret in ("10.1.2.3", "9000", "5432", "originals/", "minio.school.internal",
                   "db.school.internal", "/bucket"):
        assert secret not in shown
    assert scrub("This JPEG image could not be decoded.") == (
        "This JPEG image could not be decoded.")
