"""A name SLT gave a face survives re-screening: enrolling anyone bumps the match epoch and
every photo is screened again with new face rows, and the name is carried over to the new
face that is where the named one was. It fails closed: a face the engine now recognises
as a different pupil keeps the engine's result, the name is marked lost and the photo is
blocked with named_face_lost until SLT name it again; a correction waiting for a second
SLT member is not applied."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from models.orm import Face, FaceIdentification
from models.repositories.organisations import OrganisationRepository
from services.core import runtime
from services.screen import names
from tests.biometrics.support import epochs, face_ids, sql, wait_rescreened
from tests.flow import put_consent, upload
from tests.review.support import audit_events, enrol
from tests.support import create_org, token, wait_screened

WHY = "I teach this class and know him well."


def _pupil(client: TestClient, slt: dict[str, str], faces: Path, given: str, upn: str,
           identity: str | None = None, website: str | None = "granted") -> str:
    """A pupil with biometric and capture consent; reference photos of `identity` (none:
    the engine cannot recognise them), website consent as given."""
    r = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": upn, "given_name": given, "family_name": "Test",
        "year_group": "Year 5"})
    assert r.status_code == 201, r.text
    pid: str = r.json()["id"]
    r = client.post(f"/api/v1/pupils/{pid}/biometric-consent", headers=slt, json={
        "status": "granted", "by": "parent", "evidence_ref": f"form-{upn}"})
    assert r.status_code == 201, r.text
    put_consent(client, slt, pid, "granted", channel="capture")
    if website is not None:
        put_consent(client, slt, pid, website)
    for photo in sorted((faces / "enrol" / identity).iterdir()) if identity else []:
        r = client.post(f"/api/v1/pupils/{pid}/reference-photos", headers=slt,
                        files={"file": (photo.name, photo.read_bytes())})
        assert r.status_code == 201, r.text
    return pid


def _faces(client: TestClient, who: dict[str, str], media_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/review/{media_id}", headers=who)
    assert r.status_code == 200, r.text
    faces: list[dict[str, Any]] = r.json()["faces"]
    return faces


def _media(client: TestClient, who: dict[str, str], media_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/media/{media_id}", headers=who).json()
    return body


def _codes(media: dict[str, Any], channel: str = "website") -> set[str]:
    return {r["code"] for r in media["channels"][channel]["reason_codes"]}


def _identify(client: TestClient, who: dict[str, str], media_id: str, face_id: str,
              pupil_id: str, justification: str = WHY) -> Any:
    return client.post(f"/api/v1/media/{media_id}/faces/{face_id}/identify", headers=who,
                       json={"pupil_id": pupil_id, "justification": justification})


def _record(record_id: str) -> FaceIdentification:
    with runtime.sessions()() as session:
        row = session.get(FaceIdentification, uuid.UUID(record_id))
        assert row is not None
        session.expunge(row)
        return row


def _enrol_and_rescreen(client: TestClient, slt: dict[str, str], faces: Path,
                        media_id: str, given: str, upn: str, identity: str) -> str:
    """Enrol someone (anywhere in the school): the match epoch moves, the photo goes
    stale and is screened again with new face rows."""
    before = epochs()
    old = face_ids(media_id)
    pid = _pupil(client, slt, faces, given, upn, identity)
    assert epochs()[0] > before[0]
    wait_rescreened(media_id)
    assert not set(face_ids(media_id)) & set(old), "the re-screen did not replace the faces"
    return pid


def test_a_named_face_keeps_its_name_through_a_rescreen_and_its_consent_decides(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt", "Mrs Khan"), token("school", "staff")
    enrol(client, slt, faces, {"kit_harington": "granted"})
    # Barack has no reference photos: the engine cannot know him.
    barack = _pupil(client, slt, faces, "Barack", "UPN0100")
    media_id = upload(client, staff, faces / "events" / "obama1.jpg")
    body = wait_screened(client, slt, media_id)
    (face,) = _faces(client, slt, media_id)
    assert face["status"] == "unknown" and "faces_unknown" in _codes(body)
    r = _identify(client, slt, media_id, face["id"], barack)
    assert r.status_code == 201, r.text
    record = r.json()["id"]
    assert _media(client, slt, media_id)["channels"]["website"]["allowed"] is True

    _enrol_and_rescreen(client, slt, faces, media_id, "Joe", "UPN0101", "biden")

    (again,) = _faces(client, slt, media_id)
    assert again["id"] != face["id"]
    assert again["pupil_id"] == barack and again["status"] not in ("unknown", "uncertain")
    assert sql("SELECT match_status, distance FROM faces WHERE CAST(id AS TEXT) = :f",
               f=again["id"]) == [("matched", None)]
    after = _media(client, slt, media_id)
    assert after["channels"]["website"]["allowed"] is True, _codes(after)
    row = _record(record)
    assert str(row.face_id) == again["id"] and row.lost_at is None
    events = audit_events("review.face_name_reapplied")
    # One event per name carried over (enrolling may re-screen more than once: each
    # reference photo changes the gallery); the last one names the face there now.
    assert events and {(e["actor"], e["pupil"], e["engine_agreed"]) for e in events} == {
        ("system:screening", barack, False)}
    assert events[-1]["face"] == again["id"]
    assert len(audit_events("media.screened")) == len(events) + 1

    # His consent still decides: published, then withdrawn and taken down.
    pub = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                      json={"channel": "website"})
    assert pub.status_code == 201, pub.text
    assert client.get(pub.json()["url"]).status_code == 200
    put_consent(client, slt, barack, "withdrawn")
    assert client.get(pub.json()["url"]).status_code == 410
    blocked = _media(client, slt, media_id)
    assert blocked["channels"]["website"]["allowed"] is False
    assert "consent_withdrawn" in _codes(blocked)

    # A second gallery change: carried over again, still withdrawn, still blocked.
    _enrol_and_rescreen(client, slt, faces, media_id, "Kit", "UPN0102", "rose_leslie")
    (third,) = _faces(client, slt, media_id)
    assert third["pupil_id"] == barack
    assert "consent_withdrawn" in _codes(_media(client, slt, media_id))
    assert "faces_unknown" not in _codes(_media(client, slt, media_id))
    assert len(audit_events("review.face_name_reapplied")) > len(events)


def test_a_named_face_now_recognised_as_someone_else_is_not_renamed_and_slt_see_it(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt", "Mrs Khan"), token("school", "staff")
    enrol(client, slt, faces, {"kit_harington": "granted"})
    wrong = _pupil(client, slt, faces, "Bernard", "UPN0200")
    media_id = upload(client, staff, faces / "events" / "obama1.jpg")
    wait_screened(client, slt, media_id)
    (face,) = _faces(client, slt, media_id)
    r = _identify(client, slt, media_id, face["id"], wrong)
    assert r.status_code == 201, r.text
    record = r.json()["id"]
    assert _media(client, slt, media_id)["channels"]["website"]["allowed"] is True

    # The real Obama is enrolled, with website consent: the engine now knows the face.
    obama = _enrol_and_rescreen(client, slt, faces, media_id, "Barack", "UPN0201", "obama")

    (again,) = _faces(client, slt, media_id)
    # The engine's match stands; the name is not forced onto it ...
    assert again["pupil_id"] == obama
    # ... and the photo is blocked until SLT look: the queue says why.
    after = _media(client, slt, media_id)
    assert after["channels"]["website"]["allowed"] is False
    assert "named_face_lost" in _codes(after)
    reason = next(c for c in after["channels"]["website"]["reason_codes"]
                  if c["code"] == "named_face_lost")
    assert reason["named_pupil_id"] == wrong and reason["why"] == "matched_other_pupil"
    assert any("named" in t and "different pupil" in t
               for t in after["channels"]["website"]["reasons"])
    r = client.get("/api/v1/review", headers=slt, params={"reason": "named_face_lost"})
    assert r.status_code == 200, r.text
    assert [i["media"]["id"] for i in r.json()] == [media_id]
    row = _record(record)
    assert row.lost_reason == "matched_other_pupil" and row.lost_at is not None
    assert str(row.face_id) == face["id"]
    assert audit_events("review.face_name_reapplied") == []
    assert [(e["actor"], e["reason"]) for e in audit_events("review.face_name_lost")] == [
        ("system:screening", "matched_other_pupil")]
    # Publishing is refused.
    pub = client.post(f"/api/v1/media/{media_id}/publications", headers=slt,
                      json={"channel": "website"})
    assert pub.status_code in (403, 409, 422), pub.text

    # A further re-screen does not bring the lost name back, and the reason stays.
    _enrol_and_rescreen(client, slt, faces, media_id, "Joe", "UPN0202", "biden")
    assert _faces(client, slt, media_id)[0]["pupil_id"] == obama
    assert "named_face_lost" in _codes(_media(client, slt, media_id))

    # SLT agree with the engine: named as Obama, the question is answered.
    (now,) = _faces(client, slt, media_id)
    r = _identify(client, slt, media_id, now["id"], obama, "Yes, this is Barack, not Bernard.")
    assert r.status_code == 201, r.text
    done = _media(client, slt, media_id)
    assert "named_face_lost" not in _codes(done)
    assert done["channels"]["website"]["allowed"] is True, _codes(done)


def test_a_correction_waiting_for_a_second_slt_member_is_not_applied_by_a_rescreen(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    with runtime.sessions().begin() as session:
        org = OrganisationRepository(session).get_by_slug("school")
        assert org is not None
        org.policy = {**org.policy, "second_slt_for_overrides": True}
    first = token("school", "slt", "Mrs Khan")
    staff = token("school", "staff")
    ids = enrol(client, first, faces, {"kit_harington": "granted"})
    twin = _pupil(client, first, faces, "Twin", "UPN0300", website=None)
    media_id = upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    wait_screened(client, first, media_id)
    (kit,) = [f for f in _faces(client, first, media_id)
              if f["pupil_id"] == ids["kit_harington"]]
    r = _identify(client, first, media_id, kit["id"], twin, "That is his twin brother.")
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "awaiting_second"
    record = r.json()["id"]

    _enrol_and_rescreen(client, first, faces, media_id, "Joe", "UPN0301", "biden")

    # Still Kit, as the engine sees him; the twin's name is not applied.
    again = [f for f in _faces(client, first, media_id) if f["pupil_id"] is not None]
    assert [f["pupil_id"] for f in again] == [ids["kit_harington"]]
    assert twin not in {f["pupil_id"] for f in _faces(client, first, media_id)}
    assert _media(client, first, media_id)["channels"]["website"]["allowed"] is True
    row = _record(record)
    assert row.state == "awaiting_second" and row.lost_at is None
    assert audit_events("review.face_name_reapplied") == []
    assert audit_events("review.face_name_lost") == []
    # It still points at Kit's face, so the second SLT member can still confirm it, and
    # only then is the twin named (and, with no consent of his, the photo blocked).
    (now_kit,) = again
    assert str(row.face_id) == now_kit["id"] != kit["id"]
    second = token("school", "slt", "Mr Patel")
    r = client.post(f"/api/v1/review/identifications/{record}/confirm", headers=second)
    assert r.status_code == 200, r.text
    assert next(f for f in _faces(client, first, media_id)
                if f["id"] == now_kit["id"])["pupil_id"] == twin
    assert _media(client, first, media_id)["channels"]["website"]["allowed"] is False


def test_a_name_whose_face_is_no_longer_there_is_lost_and_blocks(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    """The new screening finds no face where the named one was (as a detector that now
    boxes faces differently would): not applied; the face is unknown again and blocks."""
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt", "Mrs Khan"), token("school", "staff")
    enrol(client, slt, faces, {"kit_harington": "granted"})
    barack = _pupil(client, slt, faces, "Barack", "UPN0400")
    media_id = upload(client, staff, faces / "events" / "obama1.jpg")
    wait_screened(client, slt, media_id)
    (face,) = _faces(client, slt, media_id)
    r = _identify(client, slt, media_id, face["id"], barack)
    assert r.status_code == 201, r.text
    with runtime.sessions().begin() as session:
        row = session.get(FaceIdentification, uuid.UUID(r.json()["id"]))
        assert row is not None and row.boxes is not None and len(row.boxes) == 1
        # The named box moved off the face: the same size, its own width to the right.
        b = row.boxes[0]
        width = b["right"] - b["left"]
        row.boxes = [{**b, "left": b["right"], "right": b["right"] + width}]

    _enrol_and_rescreen(client, slt, faces, media_id, "Joe", "UPN0401", "biden")

    (again,) = _faces(client, slt, media_id)
    assert again["pupil_id"] is None and again["status"] == "unknown"
    after = _media(client, slt, media_id)
    assert after["channels"]["website"]["allowed"] is False
    assert {"faces_unknown", "named_face_lost"} <= _codes(after)
    assert _record(r.json()["id"]).lost_reason == "no_overlap"


def _face(frame: int, left: int, track: int | None = None, top: int = 0,
          size: int = 100) -> Face:
    return Face(id=uuid.uuid4(), frame=frame, top=top, left=left, right=left + size,
                bottom=top + size, track=track, match_status="unknown")


def _box(frame: int, left: int, top: int = 0, size: int = 100) -> dict[str, int]:
    return {"frame": frame, "top": top, "left": left, "right": left + size,
            "bottom": top + size}


def test_which_new_face_is_the_named_one() -> None:
    # A photo: the face shifted by 20 px (IoU 0.67) is it; one 60 px off (0.25) is not.
    near, far = _face(0, 20), _face(0, 260)
    assert names.overlapping([_box(0, 0)], names.units([near, far])) == [[near]]
    assert names.overlapping([_box(0, 60)], names.units([_face(0, 0)])) == []
    # Two new faces on the named box (a detector splitting one face): ambiguous.
    twins = [_face(0, 5), _face(0, 10, top=5)]
    assert len(names.overlapping([_box(0, 0)], names.units(twins))) == 2
    # A video: the track that is where the named track was on most of its frames.
    named = [_box(f, 10 * f) for f in range(0, 10)]
    same = [_face(f, 10 * f + 5, track=1) for f in range(0, 10, 2)] + [
        _face(f, 400, track=1) for f in range(1, 10, 2)]
    other = [_face(f, 10 * f, track=2, top=300) for f in range(0, 10)]
    # Track 1 covers frames 0, 2, 4, 6, 8 of ten: not a majority; and track 2 is elsewhere.
    assert names.overlapping(named, names.units([*same, *other])) == []
    most = [_face(f, 10 * f + 5, track=3) for f in range(0, 6)]
    assert names.overlapping(named, names.units([*most, *other])) == [most]
    # Same place, different frame numbers: not the same face.
    shifted = [_face(f + 20, 10 * f, track=4) for f in range(0, 10)]
    assert names.overlapping(named, names.units(shifted)) == []
