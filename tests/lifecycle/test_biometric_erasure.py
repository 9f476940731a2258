"""When biometric processing must stop (a parent withdraws, the pupil objects, the pupil
leaves), the pupil's templates and reference photos go at once, every object version
included; cached galleries are dropped, so the pupil's face is unknown from then on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.core import runtime
from tests.flow import upload
from tests.lifecycle.support import enrol, eventually, publish, webhook_receiver
from tests.support import create_org, token, wait_screened


def _org_id() -> str:
    with runtime.sessions()() as session:
        org_id: str = str(session.execute(text("SELECT id FROM organisations")).scalar_one())
    return org_id


def _template_rows(pupil_id: str) -> list[bytes]:
    with runtime.sessions()() as session:
        return [bytes(r) for r in session.execute(
            text("SELECT ciphertext FROM face_templates WHERE CAST(pupil_id AS TEXT) = :p"),
            {"p": pupil_id}).scalars()]


@pytest.mark.parametrize("ending", ["pupil objects", "parent withdraws", "pupil leaves"])
def test_biometric_ending_erases_everything_and_the_face_becomes_unknown(
    client: TestClient, celery_worker: None, faces: Path, ending: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    with webhook_receiver("school") as receiver:
        pupil = enrol(client, slt, faces, "obama", 1)
        references = f"references/{_org_id()}/{pupil}"
        # Two reference photos: on a versioned bucket each is at least one version.
        assert runtime.store().count_versions(references) >= 2
        templates = _template_rows(pupil)
        assert len(templates) == 2

        first = upload(client, staff, faces / "events" / "obama1.jpg")
        before = wait_screened(client, slt, first)
        assert [f["pupil_id"] for f in before["faces"]] == [pupil]
        url = publish(client, publisher, first)["url"]

        if ending == "pupil leaves":
            r = client.patch(f"/api/v1/pupils/{pupil}", headers=slt, json={"active": False})
            assert r.status_code == 200, r.text
            assert r.json()["active"] is False
        else:
            status, by = (("objected", "pupil") if ending == "pupil objects"
                          else ("withdrawn", "parent"))
            r = client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=slt,
                            json={"status": status, "by": by, "evidence_ref": "letter-7"})
            assert r.status_code == 201, r.text
            assert r.json() == {"pupil_id": pupil, "biometric_consent": False,
                                "templates_deleted": 2}

        assert _template_rows(pupil) == []
        assert client.get(f"/api/v1/pupils/{pupil}", headers=slt).json()["templates"] == 0
        assert runtime.store().count_versions(references) == 0

        if ending != "pupil leaves":
            # A match made under consent that has ended no longer justifies publication;
            # the earlier match is what finds the copy to take down.
            assert client.get(url).status_code == 410
            notice = eventually(receiver.received, "the takedown webhook")[0]
            assert notice.signature_ok

        # A new photo of the same pupil: the worker's cached gallery is stale and must
        # not be used, so the face is unknown and the photo is blocked.
        second = upload(client, staff, faces / "events" / "obama-720p.jpg")
        after = wait_screened(client, slt, second)
        assert after["faces"], "the face is still detected"
        assert all(f["pupil_id"] is None for f in after["faces"])
        assert {f["status"] for f in after["faces"]} <= {"unknown", "uncertain"}
        assert after["status"] == "needs_review"
        assert after["channels"]["website"]["allowed"] is False
        r = client.post(f"/api/v1/media/{second}/publications", headers=publisher,
                        json={"channel": "website"})
        assert r.status_code == 409

    # Neither the audit trail nor the logs ever held a template.
    with runtime.sessions()() as session:
        trail = json.dumps([list(map(str, row)) for row in session.execute(
            text("SELECT actor, action, target, details FROM audit_events"))])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for ciphertext in templates:
        token_text = ciphertext.decode()
        assert token_text[:40] not in trail
        assert token_text[:40] not in logged
    assert "encoding" not in trail
