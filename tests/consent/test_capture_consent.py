"""Capture consent ("may be photographed"), with real faces on PostgreSQL: a recognised
pupil without it flags the upload for SLT (suggested: delete) and blocks every channel,
approved, redacted or not; granting it lets the photo through; withdrawing it takes the
live copy down."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from models.orm import Channel
from tests.consent.support import codes, consent_form, enrol_face, upload
from tests.support import create_org, token, wait_screened

ALL = [c.value for c in Channel]


def test_a_pupil_without_capture_consent_blocks_every_channel_until_it_is_recorded(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    kit = enrol_face(client, slt, faces, "kit_harington", 1)
    # Consent to publish everywhere, but the capture form was never returned.
    pupil = consent_form(client, slt, kit, dict.fromkeys(ALL, "granted"))
    assert pupil["consent_states"]["capture"] == "not_returned"
    assert all(pupil["consent_states"][c] == "in_force" for c in ALL)

    media_id = upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    body = wait_screened(client, slt, media_id)
    assert [f["pupil_id"] for f in body["faces"]] == [kit]
    for channel in ALL:
        assert body["channels"][channel]["allowed"] is False
        assert "no_capture_consent" in codes(body, channel), channel
    reason = next(r for r in body["channels"]["website"]["reason_codes"]
                  if r["code"] == "no_capture_consent")
    assert reason == {"code": "no_capture_consent", "pupil_id": kit, "state": "not_returned"}

    # SLT see it flagged, with "delete" as the suggested decision.
    review = client.get(f"/api/v1/review/{media_id}", headers=slt).json()
    flag = next(f for f in review["flags"] if f["code"] == "no_capture_consent")
    assert "Kit Harington" in flag["text"] and "delete" in flag["text"]

    # No approval lifts it, and a blurred copy is refused too.
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=slt, json={
        "channels": ["website"], "justification": "Lovely photo, the parents would agree."})
    assert r.status_code == 201, r.text
    after = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert after["channels"]["website"]["allowed"] is False
    assert "no_capture_consent" in codes(after, "website")
    for redact in (False, True):
        r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                        json={"channel": "website", "redact": redact})
        assert r.status_code == 409, r.text
        assert "no_capture_consent" in {c["code"] for c in r.json()["reason_codes"]}

    # A refusal is a refusal, not "not returned".
    r = client.put(f"/api/v1/pupils/{kit}/consents/capture", headers=slt, json={
        "status": "refused", "given_by": "guardian", "evidence_ref": "capture form, no"})
    assert r.status_code == 200, r.text
    assert r.json()["consent_states"]["capture"] == "refused"
    refused = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert {"code": "no_capture_consent", "pupil_id": kit, "state": "refused"} in (
        refused["channels"]["press"]["reason_codes"])

    # Recorded: the photo may go out (this policy needs no SLT approval).
    r = client.put(f"/api/v1/pupils/{kit}/consents/capture", headers=slt, json={
        "status": "granted", "given_by": "guardian", "evidence_ref": "capture form, yes"})
    assert r.status_code == 200 and r.json()["consent_states"]["capture"] == "in_force"
    granted = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert granted["channels"]["website"]["allowed"] is True, granted["channels"]["website"]
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": "website"})
    assert r.status_code == 201, r.text

    # Withdrawing capture consent re-decides the live copy at once, like any consent.
    r = client.put(f"/api/v1/pupils/{kit}/consents/capture", headers=slt, json={
        "status": "withdrawn", "given_by": "guardian", "evidence_ref": "email from dad"})
    assert r.status_code == 200, r.text
    pubs = client.get("/api/v1/publications", headers=publisher,
                      params={"include_withdrawn": True}).json()
    assert len(pubs) == 1 and pubs[0]["withdrawn_at"] is not None
    assert "capture" in pubs[0]["withdrawn_reason"]
    history = client.get(f"/api/v1/pupils/{kit}/consents", headers=slt).json()
    assert [h["status"] for h in history if h["channel"] == "capture"] == [
        "refused", "granted", "withdrawn"]
