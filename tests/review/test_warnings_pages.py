"""Big actions warn first and report after, over HTTP (the pages): an objection says the
enrolment photos will be deleted and deletes nothing until confirmed; approving a photo
whose retention has already ended asks first; staff errors never name role codes."""

from __future__ import annotations

import io
import re
from pathlib import Path

from fastapi.testclient import TestClient

from tests.review.support import enrol
from tests.support import create_org, token, wait_screened
from tests.web.test_pages import HTML, _key, sign_in


def _post(client: TestClient, path: str, csrf: str, data: dict[str, str]) -> object:
    return client.post(path, headers={**HTML, "Origin": str(client.base_url)},
                       data={**data, "csrf": csrf}, follow_redirects=True)


def test_objection_warns_then_deletes_and_reports(client: TestClient,
                                                  celery_worker: None, faces: Path) -> None:
    create_org("school", policy="arts-service")
    slt = token("school", "slt", "Mrs Khan")
    ids = enrol(client, slt, faces, {"kit_harington": "granted"})
    kit = ids["kit_harington"]
    photos = client.get(f"/api/v1/pupils/{kit}", headers=slt).json()
    csrf = sign_in(client, _key(slt))
    form = {"status": "objected", "by": "parent", "evidence_ref": "Letter from mum, 3 May"}
    page = _post(client, f"/register/{kit}/biometric", csrf, form)
    assert page.status_code == 200  # type: ignore[attr-defined]
    text = page.text  # type: ignore[attr-defined]
    assert re.search(r"\d+ enrolment photos? of Kit will be deleted at once", text), text
    # Nothing happened yet: the photos are still there.
    assert client.get(f"/api/v1/pupils/{kit}", headers=slt).json() == photos
    done = _post(client, f"/register/{kit}/biometric", csrf, {**form, "confirmed": "true"})
    body = done.text  # type: ignore[attr-defined]
    assert re.search(r"Objection recorded\. [1-9]\d* enrolment photos? deleted\.", body), body
    # The report is kept: it is still there on a reload.
    again = client.get(f"/register/{kit}", headers=HTML)
    assert "Objection recorded." in again.text


def test_approving_a_photo_past_its_retention_asks_first(client: TestClient,
                                                         celery_worker: None) -> None:
    from tests.test_screening_lifecycle import _landscape

    create_org("school", policy="primary-school")
    slt, staff = token("school", "slt", "Mrs Khan"), token("school", "staff")
    r = client.post("/api/v1/media", headers=staff, files={"file": ("old.jpg",
                    io.BytesIO(_landscape()))},
                    data={"event": "Archive", "purpose": "publicity", "device": "school",
                          "captured_on": "2010-06-01"})
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    wait_screened(client, slt, media_id)
    csrf = sign_in(client, _key(slt))
    item = client.get(f"/review/{media_id}", headers=HTML)
    assert "retention period ended" in item.text
    form = {"kind": "approve", "channels": "website",
            "justification": "Archive photo for the history page."}
    page = _post(client, f"/review/{media_id}/decide", csrf, form)
    assert "retention period ended" in page.text  # type: ignore[attr-defined]
    assert "Yes, approve" in page.text  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/media/{media_id}",
                      headers=slt).json()["channels"]["website"]["allowed"] is False
    done = _post(client, f"/review/{media_id}/decide", csrf, {**form, "confirmed": "true"})
    assert "Approved." in done.text  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/media/{media_id}",
                      headers=slt).json()["channels"]["website"]["allowed"] is True

    # Staff asking for an SLT page are told in words, not role codes.
    staff_csrf = sign_in_staff(client, staff)
    assert staff_csrf
    # The uploader's own page keeps saying the photo is past its retention end.
    mine = client.get("/upload", headers=HTML)
    assert "old.jpg" in mine.text and "retention period ended" in mine.text
    denied = client.get("/review", headers=HTML)
    assert denied.status_code == 403
    assert "roles" not in denied.text and "slt, admin" not in denied.text
    assert "Only senior leaders (SLT)" in denied.text


def sign_in_staff(client: TestClient, staff: dict[str, str]) -> bool:
    client.cookies.clear()
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": _key(staff), "csrf": nonce.group(1), "next": "/upload"})
    return r.status_code == 303
