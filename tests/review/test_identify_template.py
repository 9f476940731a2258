"""Naming a face with "also use this face to recognise <pupil> in future" (issue 11,
"learning from SLT, within the law"): the naming is stored first and stands whatever
becomes of the template; the template is added only when asked and only under current
biometric consent, and a refusal comes back as a code. Real PostgreSQL, Redis, Celery
worker and face engine, on the shared public faces."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from tests.biometrics.support import (
    audit_actions,
    bearer,
    epochs,
    pupil,
    secret,
    sql,
    template_rows,
    wait_rescreened,
)
from tests.flow import upload
from tests.support import create_org, wait_screened
from tests.web.test_pages import HTML, sign_in

WHY = "I teach this class and know him well."


def _only_face(client: TestClient, slt: dict[str, str], media_id: str) -> dict[str, Any]:
    """The photo's one clear face (the largest: the engine may also see specks)."""
    wait_screened(client, slt, media_id)
    r = client.get(f"/api/v1/review/{media_id}", headers=slt)
    assert r.status_code == 200, r.text
    faces: list[dict[str, Any]] = r.json()["faces"]
    top, right, bottom, left = 0, 1, 2, 3
    return max(faces, key=lambda f: (f["box"][bottom] - f["box"][top])
               * (f["box"][right] - f["box"][left]))


def _identify(client: TestClient, slt: dict[str, str], media_id: str, face_id: str,
              pupil_id: str, **extra: Any) -> Any:
    r = client.post(f"/api/v1/media/{media_id}/faces/{face_id}/identify", headers=slt,
                    json={"pupil_id": pupil_id, "justification": WHY, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def _mirrored(path: Path) -> bytes:
    """The same person, another file: the photo flipped left to right."""
    buf = io.BytesIO()
    ImageOps.mirror(Image.open(path).convert("RGB")).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _audit(action: str) -> list[dict[str, Any]]:
    return [dict(r[0]) for r in sql(
        "SELECT details FROM audit_events WHERE action = :a ORDER BY id", a=action)]


def test_naming_with_the_tick_teaches_recognition_and_only_then(
    client: TestClient, celery_worker: None, faces: Path, tmp_path: Path,
) -> None:
    create_org("school")
    slt, staff = bearer(secret("school", "slt", "Mrs Khan")), bearer(secret("school", "staff"))
    # Alex is enrolled from one photo: his other photos are just over the threshold.
    alex = pupil(client, slt, faces, "alex_lacamoire", ["alex_b.png"], 1)
    pupil(client, slt, faces, "obama", ["obama_b.jpg"], 2)
    # Kit's parents never agreed to face matching.
    kit = pupil(client, slt, faces, "kit_harington", [], 3, biometric=False)
    event = upload(client, staff, faces / "events" / "alex_lacamoire1.jpg")
    unseen = upload(client, staff, faces / "enrol" / "alex_lacamoire" / "alex_a.jpg")
    mirror_file = tmp_path / "alex_a_mirrored.jpg"
    mirror_file.write_bytes(_mirrored(faces / "enrol" / "alex_lacamoire" / "alex_a.jpg"))
    mirrored = upload(client, staff, mirror_file)
    kit_photo = upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    for media_id in (event, unseen, mirrored):
        assert _only_face(client, slt, media_id)["status"] == "unknown"
    assert _only_face(client, slt, unseen)["pupil_id"] is None
    before = epochs()

    # 1. Named without the tick: the face counts as Alex, and nothing is learnt.
    face = _only_face(client, slt, mirrored)
    body = _identify(client, slt, mirrored, face["id"], alex)
    assert body["state"] == "in_force" and body["template"] is None
    assert _only_face(client, slt, mirrored)["pupil_id"] == alex
    assert len(template_rows(alex)) == 1
    assert epochs() == before
    assert "template.added_from_face" not in audit_actions()

    # 2. Kit with the tick: no biometric consent, so the template is refused with a code,
    # and the naming stands: his face counts as Kit, and what the register says of him
    # decides (the gate blocks any match of a pupil without biometric consent).
    face = _only_face(client, slt, kit_photo)
    body = _identify(client, slt, kit_photo, face["id"], kit, add_as_template=True)
    assert body["state"] == "in_force" and body["pupil_id"] == kit
    assert body["template"]["added"] is False
    assert body["template"]["code"] == "biometric_consent_not_current"
    assert "biometric consent" in body["template"]["reason"]
    named = _only_face(client, slt, kit_photo)
    assert named["pupil_id"] == kit and named["status"] not in ("unknown", "uncertain")
    media = client.get(f"/api/v1/media/{kit_photo}", headers=slt).json()
    assert media["channels"]["website"]["allowed"] is False
    assert {"code": "biometric_consent_ended", "pupil_id": kit} in \
        media["channels"]["website"]["reason_codes"]
    assert template_rows(kit) == []
    assert epochs() == before  # the gallery did not change
    (refused,) = _audit("review.template_refused")
    assert refused["code"] == "biometric_consent_not_current"
    assert refused["face"] == face["id"] and refused["media"] == kit_photo
    assert [e["pupil"] for e in _audit("review.face_identified")] == [alex, kit]

    # 3. Alex with the tick: a second template, audited, and the gallery changes.
    face = _only_face(client, slt, event)
    body = _identify(client, slt, event, face["id"], alex, add_as_template=True)
    assert body["state"] == "in_force"
    assert body["template"]["added"] is True and body["template"]["code"] is None
    assert body["template"]["templates"] == 2
    assert len(template_rows(alex)) == 2
    (added,) = _audit("template.added_from_face")
    assert added["media"] == event and added["face"] == face["id"]
    assert epochs()[0] > before[0]
    assert len(_audit("review.template_refused")) == 1

    # Alex's other photo, never named by anyone, is re-screened and now recognised.
    wait_rescreened(unseen)
    again = _only_face(client, slt, unseen)
    assert again["pupil_id"] == alex and again["status"] == "consented", again
    assert client.get(f"/api/v1/media/{unseen}",
                      headers=slt).json()["channels"]["website"]["allowed"] is True


def _page_post(client: TestClient, path: str, csrf: str, data: dict[str, str]) -> Any:
    return client.post(path, headers={**HTML, "Origin": str(client.base_url)},
                       data={**data, "csrf": csrf}, follow_redirects=True)


def test_the_name_a_face_page_learns_when_ticked_and_says_why_not(
    client: TestClient, celery_worker: None, faces: Path,
) -> None:
    create_org("school")
    slt_key = secret("school", "slt", "Mrs Khan")
    slt, staff = bearer(slt_key), bearer(secret("school", "staff"))
    alex = pupil(client, slt, faces, "alex_lacamoire", ["alex_b.png"], 1)
    kit = pupil(client, slt, faces, "kit_harington", [], 3, biometric=False)
    event = upload(client, staff, faces / "events" / "alex_lacamoire1.jpg")
    kit_photo = upload(client, staff, faces / "events" / "johnsnow_test1.jpg")
    alex_face = _only_face(client, slt, event)["id"]
    kit_face = _only_face(client, slt, kit_photo)["id"]
    csrf = sign_in(client, slt_key)

    # Offered for Alex (enrolled under consent), unticked; not for Kit, with the reason.
    page = client.get(f"/review/{event}/faces/{alex_face}/name?q=alex", headers=HTML).text
    box = re.search(r'<input type="checkbox" name="add_as_template"[^>]*>', page)
    assert box and "checked" not in box.group(0)
    assert "Also use this face to recognise Alex Lacamoire in future" in page
    page = client.get(f"/review/{kit_photo}/faces/{kit_face}/name?q=kit", headers=HTML).text
    assert 'name="add_as_template"' not in page
    assert "there is no current consent to face matching for Kit Harington" in page

    # Ticked anyway for Kit (a stale page): named, not learnt, and the page says why.
    done = _page_post(client, f"/review/{kit_photo}/faces/{kit_face}/identify", csrf, {
        "pupil_id": kit, "justification": WHY, "add_as_template": "true"})
    assert done.status_code == 200 and done.url.path == f"/review/{kit_photo}"
    notice = html.unescape(done.text)
    assert "Named as Kit Harington" in notice
    assert ("Not used to recognise Kit Harington in future: there is no current consent "
            "to face matching") in notice
    assert _only_face(client, slt, kit_photo)["pupil_id"] == kit
    assert template_rows(kit) == []

    # Ticked for Alex: named and learnt.
    done = _page_post(client, f"/review/{event}/faces/{alex_face}/identify", csrf, {
        "pupil_id": alex, "justification": WHY, "add_as_template": "true"})
    assert done.status_code == 200 and done.url.path == f"/review/{event}"
    notice = html.unescape(done.text)
    assert "Named as Alex Lacamoire" in notice
    assert "From now on ConsentGate also uses this face to recognise Alex Lacamoire" in notice
    assert len(template_rows(alex)) == 2
