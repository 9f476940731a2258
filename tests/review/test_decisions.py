"""SLT decisions over the API: every one needs a written reason that lands in the audit
trail; rejecting deletes; clearing an unidentified face needs a second SLT member when
the policy says so; the review queue says why each medium is there; and the review
pictures are never public."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient

from services.core import runtime
from tests.review.support import audit_events, enrol
from tests.support import create_org, token, wait_screened
from tests.test_screening_lifecycle import _insert_media, _landscape


def _upload(client: TestClient, staff: dict[str, str], path: Path | None = None, *,
            data: bytes | None = None, device: str = "school") -> str:
    body = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    r = client.post("/api/v1/media", headers=staff,
                    data={"event": "Assembly", "purpose": "publicity", "device": device},
                    files={"file": ("photo.jpg", io.BytesIO(body))})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def _decide(client: TestClient, who: dict[str, str], media_id: str, **body: object):
    return client.post(f"/api/v1/media/{media_id}/decisions", headers=who, json=body)


def test_reject_deletes_the_files_takes_publications_down_and_keeps_the_reason(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt", "Ms Deputy"), token("school", "staff")
    enrol(client, slt, faces, {"kit_harington": "granted"})
    media_id = _upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    assert wait_screened(client, slt, media_id)["channels"]["website"]["allowed"] is True
    published = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                            json={"channel": "website"})
    assert published.status_code == 201
    original_keys = list(runtime.store().list_keys("originals/"))
    assert len(original_keys) == 1

    r = _decide(client, slt, media_id, kind="reject", justification="too")
    assert r.status_code == 422
    why = "Taken in the changing room corridor; not appropriate."
    r = _decide(client, slt, media_id, kind="reject", justification=why)
    assert r.status_code == 201, r.text

    assert list(runtime.store().list_keys("originals/")) == []
    assert list(runtime.store().list_keys("published/")) == []
    assert client.get(published.json()["url"]).status_code == 410
    after = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert after["status"] == "rejected"
    assert after["faces"] == []
    assert all(not d["allowed"] for d in after["channels"].values())
    assert media_id not in {i["media"]["id"] for i in
                            client.get("/api/v1/review", headers=slt).json()}
    assert client.get(f"/api/v1/media/{media_id}/picture.jpg", headers=slt).status_code == 410
    # Rejecting twice is refused; the first reason stands.
    assert _decide(client, slt, media_id, kind="reject",
                   justification=why).status_code == 409
    rejected = audit_events("review.rejected")
    assert [(e["actor"], e["justification"], e["publications_taken_down"])
            for e in rejected] == [("slt:Ms Deputy", why, 1)]


def test_a_legal_hold_stops_a_reject(client: TestClient, celery_worker: None) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    media_id = _upload(client, staff, data=_landscape())
    wait_screened(client, slt, media_id)
    r = client.post(f"/api/v1/media/{media_id}/legal-hold", headers=slt,
                    json={"reason": "Open safeguarding case 12"})
    assert r.status_code == 201, r.text
    r = _decide(client, slt, media_id, kind="reject", justification="Not needed any more.")
    assert r.status_code == 409
    assert "legal hold" in r.json()["detail"]
    assert len(list(runtime.store().list_keys("originals/"))) == 1


def test_clearing_an_unidentified_face_needs_a_second_slt_member(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    # The primary school's policy sets second_slt_for_overrides.
    create_org("primary", policy="primary-school")
    head, deputy = token("primary", "slt", "Head"), token("primary", "slt", "Deputy")
    staff = token("primary", "staff")
    head_again = token("primary", "slt", "head")
    enrol(client, head, faces, {"kit_harington": None})
    visitors = _upload(client, staff, faces / "events" / "two_people.jpg")
    body = wait_screened(client, head, visitors)
    unresolved = [f for f in body["faces"] if f["status"] in ("unknown", "uncertain")]
    assert len(unresolved) == 2
    review = client.get(f"/api/v1/review/{visitors}", headers=head).json()
    face_ids = [f["id"] for f in review["faces"]]

    why = "These are the two visiting speakers; both signed our photo consent form."
    r = _decide(client, head, visitors, kind="approve", channels=["newsletter"],
                cleared_faces=face_ids, justification=why)
    assert r.status_code == 201, r.text
    decision = r.json()
    assert decision["state"] == "awaiting_second"
    # Until confirmed it grants nothing, not even the plain approval.
    still = client.get(f"/api/v1/media/{visitors}", headers=head).json()["channels"]
    assert still["newsletter"]["allowed"] is False
    assert any("SLT approval" in r for r in still["newsletter"]["reasons"])
    flags = {f["code"] for f in client.get(f"/api/v1/review/{visitors}",
                                           headers=head).json()["flags"]}
    assert "awaiting_second" in flags

    confirm = f"/api/v1/review/decisions/{decision['id']}/confirm"
    note = "Checked the visitor book: agreed."
    assert client.post(confirm, headers=head, json={"note": note}).status_code == 403
    # The same person with another key is still the same person.
    assert client.post(confirm, headers=head_again, json={"note": note}).status_code == 403
    assert client.post(confirm, headers=staff, json={"note": note}).status_code == 403
    r = client.post(confirm, headers=deputy, json={"note": note})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_force"
    assert r.json()["second_by"] == "Deputy"

    now = client.get(f"/api/v1/media/{visitors}", headers=head).json()["channels"]
    assert now["newsletter"]["allowed"] is True and now["newsletter"]["reasons"] == []
    # Cleared for the newsletter only.
    assert now["website"]["allowed"] is False
    assert client.post(f"/api/v1/media/{visitors}/publications", headers=head,
                       json={"channel": "newsletter"}).status_code == 201
    assert client.post(confirm, headers=deputy, json={"note": note}).status_code == 409

    waiting = audit_events("review.awaiting_second_slt")
    confirmed = audit_events("review.confirmed")
    assert waiting[0]["justification"] == why and waiting[0]["actor"] == "slt:Head"
    assert confirmed[0]["note"] == note and confirmed[0]["actor"] == "slt:Deputy"
    assert sorted(confirmed[0]["faces_cleared"]) == sorted(face_ids)


def test_a_recognised_pupil_without_consent_cannot_be_cleared(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    ids = enrol(client, slt, faces, {"kit_harington": None})
    media_id = _upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    wait_screened(client, slt, media_id)
    review = client.get(f"/api/v1/review/{media_id}", headers=slt).json()
    kit = next(f for f in review["faces"] if f["pupil_id"] == ids["kit_harington"])
    assert kit["status"] == "unconsented"
    assert kit["consents"]["website"] == {"allowed": False, "text": "not returned"}
    r = _decide(client, slt, media_id, kind="approve", channels=["website"],
                cleared_faces=[kit["id"]], justification="He said it was fine in person.")
    assert r.status_code == 422
    assert "recognised pupil cannot be cleared" in r.json()["detail"]
    # A plain approval is recorded but leaves him blocked.
    r = _decide(client, slt, media_id, kind="approve", channels=["website"],
                justification="Good photo of the concert, approved for the site.")
    assert r.status_code == 201 and r.json()["state"] == "in_force"
    website = client.get(f"/api/v1/media/{media_id}", headers=slt).json()["channels"]["website"]
    assert website["allowed"] is False
    assert audit_events("review.approved")[0]["justification"].startswith("Good photo")


def test_the_review_queue_says_why_each_medium_is_there(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    ids = enrol(client, slt, faces, {"kit_harington": "granted", "obama": "granted",
                                     "biden": "granted"})
    client.put(f"/api/v1/pupils/{ids['biden']}/consents/website", headers=slt, json={
        "status": "withdrawn", "given_by": "guardian", "evidence_ref": "letter 3"})
    single = _upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    personal = _upload(client, staff, data=_landscape(), device="personal")
    crowd = _upload(client, staff, faces / "events" / "obama_and_biden.jpg")
    failed = str(_insert_media("school", staff, key="originals/none/missing.jpg"))
    from workers.screen.tasks import screen_media

    screen_media.delay(failed)
    for media_id in (single, personal, crowd, failed):
        wait_screened(client, slt, media_id)

    queue = client.get("/api/v1/review", headers=slt).json()
    flags = {i["media"]["id"]: {f["code"] for f in i["flags"]} for i in queue}
    assert queue[0]["media"]["id"] == failed
    assert "screening_failed" in flags[failed]
    assert "personal_device" in flags[personal]
    assert {"withdrawn_consent"} <= flags[crowd]
    assert {"unknown_face", "uncertain_face"} & flags[crowd]
    # Kit has consent for the website only, so the photo of him alone is blocked for the
    # other channels, and flagged because it shows one pupil alone.
    assert flags[single] == {"single_pupil"}
    withdrawn = next(f["text"] for f in client.get(f"/api/v1/review/{crowd}",
                                                  headers=slt).json()["flags"]
                     if f["code"] == "withdrawn_consent")
    assert "Biden" in withdrawn


def test_review_pictures_are_for_slt_and_the_uploader_only(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    create_org("other", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff", "Mr Jones")
    colleague, publisher = token("school", "staff", "Ms Other"), token("school", "publisher")
    outsider = token("other", "slt")
    enrol(client, slt, faces, {"kit_harington": "granted"})
    media_id = _upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    wait_screened(client, slt, media_id)
    face_id = client.get(f"/api/v1/review/{media_id}", headers=slt).json()["faces"][0]["id"]
    base = f"/api/v1/media/{media_id}"
    picture, crop = f"{base}/picture.jpg", f"{base}/faces/{face_id}.jpg"
    preview = f"{base}/blurred-preview.jpg?channel=website"

    for url in (picture, crop, preview):
        assert client.get(url).status_code == 401
        assert client.get(url, headers=publisher).status_code == 403
        assert client.get(url, headers=colleague).status_code in (403, 404)
        assert client.get(url, headers=outsider).status_code == 404
        ok = client.get(url, headers=slt)
        assert ok.status_code == 200 and ok.content[:2] == b"\xff\xd8"
        assert ok.headers["cache-control"] == "private, no-store"
    for url in (picture, crop):
        assert client.get(url, headers=staff).status_code == 200
    assert client.get(preview, headers=staff).status_code == 403
    assert client.get(f"/api/v1/review/{media_id}", headers=staff).status_code == 403
