"""SLT adds a face from an event photo as an extra template of a pupil (issue 11,
"learning from SLT, within the law"): only under current biometric consent, only a face
that passes the enrolment gate and is clearly the pupil's, encrypted like every other
template, audited, and every medium screened before is looked at again."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.db import transaction
from services.biometrics.enrol import AddedTemplate, add_face_as_template
from services.biometrics.templates import decrypt_template
from services.core import runtime
from services.core.config import Settings, get_settings
from services.core.errors import ConsentGateError, Forbidden, NotFound
from tests.biometrics.support import (
    as_uuid,
    audit_actions,
    bearer,
    epochs,
    face_ids,
    principal,
    pupil,
    secret,
    sql,
    template_rows,
    wait_rescreened,
)
from tests.flow import upload
from tests.support import create_org, wait_screened


def _add(token: str, media_id: str, face_id: str, pupil_id: str,
         settings: Settings | None = None) -> AddedTemplate:
    with transaction(runtime.sessions()) as session:
        return add_face_as_template(session, settings or get_settings(),
                                    principal(session, token), as_uuid(media_id),
                                    as_uuid(face_id), as_uuid(pupil_id))


def _refused(token: str, media_id: str, face_id: str, pupil_id: str,
             settings: Settings | None = None) -> ConsentGateError:
    with pytest.raises(ConsentGateError) as caught:
        _add(token, media_id, face_id, pupil_id, settings)
    return caught.value


def _face(client: TestClient, slt: dict[str, str], media_id: str) -> dict[str, object]:
    body = wait_screened(client, slt, media_id)
    (face,) = [f for f in body["faces"] if f["status"] != "uncertain"]
    return dict(face)


def test_a_face_slt_adds_teaches_the_gallery_and_everything_is_screened_again(
    client: TestClient, celery_worker: None, faces: Path,
) -> None:
    create_org("school")
    slt_token = secret("school", "slt")
    slt, staff = bearer(slt_token), bearer(secret("school", "staff"))
    # Alex is enrolled from one photo only. Two other photos of him are then just over
    # the threshold: unknown, with Alex as a candidate.
    alex = pupil(client, slt, faces, "alex_lacamoire", ["alex_b.png"], 1)
    obama = pupil(client, slt, faces, "obama", ["obama_b.jpg"], 2)
    event = upload(client, staff, faces / "events" / "alex_lacamoire1.jpg")
    other = upload(client, staff, faces / "enrol" / "alex_lacamoire" / "alex_a.jpg")
    for media_id in (event, other):
        face = _face(client, slt, media_id)
        assert face["status"] == "unknown"
        assert [c["pupil_id"] for c in face["candidates"]] == [alex]  # type: ignore[index,union-attr]
    before_templates = template_rows(alex)
    assert len(before_templates) == 1
    match_epoch, gallery_version = epochs()
    references_before = runtime.store().count_versions("references/")

    (face_id,) = face_ids(event)
    added = _add(slt_token, event, face_id, alex)

    assert added.pupil_id == as_uuid(alex) and added.templates == 2
    assert 0.4 < added.distance <= 0.55  # just over the threshold: why it was unknown
    rows = template_rows(alex)
    assert len(rows) == 2 and rows[0] == before_templates[0]
    new_ref, ciphertext = rows[1]
    assert new_ref == str(added.reference_photo_id)
    # Encrypted at rest like every template: the stored bytes are not the encoding.
    encoding = decrypt_template(get_settings(), ciphertext)
    assert encoding.shape == (128,)
    assert encoding.tobytes() not in ciphertext
    # The crop is kept as a reference photo (encrypted), so re-enrolment can recompute it
    # and an erasure deletes it with the others.
    assert runtime.store().count_versions("references/") == references_before + 1
    (stored,) = sql("SELECT storage_key FROM reference_photos WHERE CAST(id AS TEXT) = :i",
                    i=new_ref)
    assert not runtime.store().get(stored[0]).startswith(b"\x89PNG")
    assert client.get(f"/api/v1/pupils/{alex}", headers=slt).json()["templates"] == 2
    assert "template.added_from_face" in audit_actions()
    (details,) = sql("SELECT details FROM audit_events WHERE action = 'template.added_from_face'")
    assert details[0]["media"] == event and details[0]["face"] == face_id
    new_match_epoch, new_gallery_version = epochs()
    assert new_match_epoch > match_epoch and new_gallery_version > gallery_version

    # The other photo of Alex, unknown before, is re-screened and now recognised; the
    # event photo the face came from is recognised too. Obama is still nobody else.
    for media_id in (event, other):
        wait_rescreened(media_id)
        face = _face(client, slt, media_id)
        # Matched, and his website consent stands.
        assert face["pupil_id"] == alex and face["status"] == "consented", face
    assert obama not in {f["pupil_id"] for m in (event, other)
                         for f in client.get(f"/api/v1/media/{m}", headers=slt).json()["faces"]}


def test_refusals_write_nothing(client: TestClient, celery_worker: None, faces: Path) -> None:
    create_org("school")
    create_org("elsewhere")
    slt_token, staff_token = secret("school", "slt"), secret("school", "staff")
    slt, staff = bearer(slt_token), bearer(staff_token)
    alex = pupil(client, slt, faces, "alex_lacamoire", ["alex_b.png"], 1)
    obama = pupil(client, slt, faces, "obama", ["obama_b.jpg"], 2)
    # Biometric consent never given: no template, nothing to add to.
    kit = pupil(client, slt, faces, "kit_harington", [], 3, biometric=False)
    other_slt = bearer(secret("elsewhere", "slt"))
    stranger = pupil(client, other_slt, faces, "alex_lacamoire", ["alex_a.jpg"], 4)
    event = upload(client, staff, faces / "events" / "alex_lacamoire1.jpg")
    small = upload(client, staff, faces / "events" / "obama-240p.jpg")
    wait_screened(client, slt, event)
    wait_screened(client, slt, small)
    (face_id,) = face_ids(event)
    (small_face,) = face_ids(small)

    def state() -> tuple[object, ...]:
        return (template_rows(alex), template_rows(obama), template_rows(kit),
                runtime.store().count_versions("references/"), epochs(), audit_actions())

    before = state()

    # Staff may not teach the gallery.
    assert isinstance(_refused(staff_token, event, face_id, alex), Forbidden)
    # A pupil of another school is not found, whatever the face.
    err = _refused(slt_token, event, face_id, stranger)
    assert isinstance(err, NotFound) and err.details["pupil_id"] == stranger
    # No current biometric consent.
    err = _refused(slt_token, event, face_id, kit)
    assert err.details["error_code"] == "biometric_consent_not_current"
    # A face too small for the enrolment gate (the same gate as reference photos).
    err = _refused(slt_token, small, small_face, obama)
    assert err.details["error_code"] == "template_refused"
    assert err.details["gate"] == "too_small"
    assert err.details["face_px"] < err.details["min_face_px"] == 100
    # Naming Alex's face as Obama: it is far from Obama's own templates, and adding it
    # would let Alex's photos pass under Obama's consent. Refused, with the distance.
    err = _refused(slt_token, event, face_id, obama)
    assert err.details["error_code"] == "template_inconsistent"
    assert err.details["distance"] > err.details["limit"]

    # At most max_templates_per_pupil templates (Alex has one).
    err = _refused(slt_token, event, face_id, alex,
                   get_settings().model_copy(update={"max_templates_per_pupil": 1}))
    assert err.details["error_code"] == "template_limit"
    assert (err.details["templates"], err.details["limit"]) == (1, 1)

    assert state() == before

    # Consent withdrawn after enrolment: the templates went with it, and none comes back.
    r = client.post(f"/api/v1/pupils/{alex}/biometric-consent", headers=slt,
                    json={"status": "withdrawn", "by": "parent", "evidence_ref": "letter-2"})
    assert r.status_code == 201, r.text
    err = _refused(slt_token, event, face_id, alex)
    assert err.details["error_code"] == "biometric_consent_not_current"
    assert template_rows(alex) == []
