"""SLT name a face the engine could not identify: from then on the face is that pupil,
so the pupil's consent decides the photo, and a withdrawal takes the photo down. Refused
for a pupil of another organisation and while the screening is stale; a correction of a
recognised pupil waits for a second SLT member where the policy says so."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from models.orm import Media
from services.core import runtime
from tests.flow import put_consent, upload
from tests.review.support import audit_events, enrol
from tests.support import create_org, token, wait_screened

WHY = "I teach this class and know her: it is Rose."


def _pupil(client: TestClient, slt: dict[str, str], given: str, family: str,
           upn: str) -> str:
    r = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": upn, "given_name": given, "family_name": family,
        "year_group": "Year 5"})
    assert r.status_code == 201, r.text
    pid: str = r.json()["id"]
    r = client.post(f"/api/v1/pupils/{pid}/biometric-consent", headers=slt, json={
        "status": "granted", "by": "parent", "evidence_ref": "form-rose"})
    assert r.status_code == 201, r.text
    return pid


def _set_stale(media_id: str, stale: bool) -> None:
    with runtime.sessions().begin() as session:
        media = session.get(Media, uuid.UUID(media_id))
        assert media is not None
        media.needs_rescreen = stale


def _faces(client: TestClient, who: dict[str, str], media_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/review/{media_id}", headers=who)
    assert r.status_code == 200, r.text
    faces: list[dict[str, Any]] = r.json()["faces"]
    return faces


def _codes(media: dict[str, Any], channel: str = "website") -> set[str]:
    return {r["code"] for r in media["channels"][channel]["reason_codes"]}


def _identify(client: TestClient, who: dict[str, str], media_id: str, face_id: str,
              pupil_id: str, justification: str = WHY, **extra: Any) -> Any:
    return client.post(f"/api/v1/media/{media_id}/faces/{face_id}/identify", headers=who,
                       json={"pupil_id": pupil_id, "justification": justification, **extra})


def test_a_named_face_counts_as_that_pupil_and_refusals(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    create_org("other", policy="arts-service")
    slt, staff = token("school", "slt", "Mrs Khan"), token("school", "staff")
    other_slt = token("other", "slt", "Mr Other")
    ids = enrol(client, slt, faces, {"kit_harington": "granted"})
    rose = _pupil(client, slt, "Rose", "Leslie", "UPN0100")
    stranger = _pupil(client, other_slt, "Rosa", "Elsewhere", "UPN0200")
    media_id = upload(client, staff, faces / "events" / "kit_with_rose.jpg")
    body = wait_screened(client, slt, media_id)
    unknown = [f for f in _faces(client, slt, media_id) if f["status"] == "unknown"]
    assert len(unknown) == 1, body["faces"]
    face_id = unknown[0]["id"]
    assert "faces_unknown" in _codes(body)

    # Another organisation's pupil is not found; staff may not name faces.
    assert _identify(client, slt, media_id, face_id, stranger).status_code == 404
    assert _identify(client, staff, media_id, face_id, rose).status_code == 403
    assert _identify(client, slt, media_id, face_id, rose, "short").status_code == 422
    assert _identify(client, slt, media_id, str(uuid.uuid4()), rose).status_code == 404
    # While the screening is stale the faces may be replaced: refused.
    _set_stale(media_id, True)
    r = _identify(client, slt, media_id, face_id, rose)
    assert r.status_code == 409, r.text
    _set_stale(media_id, False)
    assert audit_events("review.face_identified") == []

    # Named: Rose has no consent recorded, so her consent now blocks the photo.
    r = _identify(client, slt, media_id, face_id, rose)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "in_force"
    after = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    website = after["channels"]["website"]
    assert website["allowed"] is False
    assert "faces_unknown" not in _codes(after) and "no_consent" in _codes(after)
    named = next(f for f in _faces(client, slt, media_id) if f["id"] == face_id)
    assert named["pupil_id"] == rose

    # Her guardian agrees: the photo may go out, and it is published.
    put_consent(client, slt, rose, "granted", channel="capture")
    put_consent(client, slt, rose, "granted")
    granted = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert "no_consent" not in _codes(granted)
    # Tiny faces in the background crowd are cleared by SLT as nobody they know.
    crowd = [f["id"] for f in _faces(client, slt, media_id)
             if f["status"] in ("unknown", "uncertain")]
    assert face_id not in crowd
    r = client.post(f"/api/v1/media/{media_id}/decisions", headers=slt, json={
        "kind": "approve", "channels": ["website"], "cleared_faces": crowd,
        "justification": "Background crowd at the fair, adults only."})
    assert r.status_code == 201, r.text
    granted = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert granted["channels"]["website"]["allowed"] is True, _codes(granted)
    pub = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                      json={"channel": "website"})
    assert pub.status_code == 201, pub.text
    # The withdrawal finds the photo through the named face and takes it down.
    put_consent(client, slt, rose, "withdrawn")
    assert client.get(pub.json()["url"]).status_code == 410
    events = audit_events("review.face_identified")
    assert [(e["actor"], e["pupil"], e["previous_status"], e["justification"])
            for e in events] == [("slt:Mrs Khan", rose, "unknown", WHY)]
    assert ids["kit_harington"] != rose


def test_correcting_a_recognised_pupil_needs_a_second_slt_member(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    with runtime.sessions().begin() as session:
        from models.repositories.organisations import OrganisationRepository
        org = OrganisationRepository(session).get_by_slug("school")
        assert org is not None
        org.policy = {**org.policy, "second_slt_for_overrides": True}
    first, second = token("school", "slt", "Mrs Khan"), token("school", "slt", "Mr Patel")
    staff = token("school", "staff")
    ids = enrol(client, first, faces, {"kit_harington": "granted"})
    other = _pupil(client, first, "Kit", "Twin", "UPN0300")
    media_id = upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    body = wait_screened(client, first, media_id)
    kit = next(f for f in _faces(client, first, media_id)
               if f["pupil_id"] == ids["kit_harington"])
    assert body["channels"]["website"]["allowed"] is True

    r = _identify(client, first, media_id, kit["id"], other,
                  "That is his twin brother, not Kit.", add_as_template=True)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "awaiting_second"
    # Nothing is learnt from a naming that does not count yet.
    assert r.json()["template"]["added"] is False
    assert r.json()["template"]["code"] == "identification_awaiting_second"
    assert audit_events("template.added_from_face") == []
    # Nothing changes until a second SLT member confirms.
    still = _faces(client, first, media_id)
    assert next(f for f in still if f["id"] == kit["id"])["pupil_id"] == ids["kit_harington"]
    record = r.json()["id"]
    assert client.post(f"/api/v1/review/identifications/{record}/confirm",
                       headers=first).status_code == 403
    r = client.post(f"/api/v1/review/identifications/{record}/confirm", headers=second)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_force" and r.json()["second_by"] == "Mr Patel"
    after = client.get(f"/api/v1/media/{media_id}", headers=first).json()
    assert next(f for f in _faces(client, first, media_id)
                if f["id"] == kit["id"])["pupil_id"] == other
    # The twin has no consent recorded: the photo is blocked now.
    assert after["channels"]["website"]["allowed"] is False
    assert "no_consent" in _codes(after)
