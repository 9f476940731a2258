"""Bulk enrolment from a zip of photos named by UPN: those with biometric consent are
enrolled, the rest refused with a reason each; a re-run enrols nothing twice."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from services.core import runtime
from tests.imports.support import make_csv, make_upn
from tests.support import create_org, token


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_a_zip_enrols_consented_pupils_and_refuses_the_rest_with_reasons(
    client: TestClient, faces: Path,
) -> None:
    create_org("school")
    slt = token("school", "slt")
    # Pupils 0 and 3 have biometric consent in the generated file; 1 and 2 do not.
    assert client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", make_csv("sims", range(6)), "text/csv")}).status_code == 200
    enrol = faces / "enrol"
    files = {
        f"photos/{make_upn(0)}.jpg": (enrol / "obama" / "obama_a.jpg").read_bytes(),
        f"photos/{make_upn(0)}_2.jpg": (enrol / "obama" / "obama_b.jpg").read_bytes(),
        f"{make_upn(3)}.jpg": (enrol / "biden" / "biden_a.jpg").read_bytes(),
        f"{make_upn(1)}.jpg": (enrol / "kit_harington" / "kit_a.jpg").read_bytes(),
        # Consent, but two people in the photo.
        f"{make_upn(3)}_2.jpg": (faces / "events" / "two_people.jpg").read_bytes(),
        f"{make_upn(500)}.jpg": (enrol / "rose_leslie" / "rose_a.jpg").read_bytes(),
        "class photo.jpg": (enrol / "rose_leslie" / "rose_a.jpg").read_bytes(),
        "__MACOSX/._junk": b"resource fork",
    }
    r = client.post("/api/v1/imports/reference-photos", headers=slt,
                    files={"file": ("photos.zip", _zip(files), "application/zip")})
    assert r.status_code == 200, r.text
    body = r.json()
    by_file = {f["file"]: f for f in body["files"]}
    assert "__MACOSX/._junk" not in by_file
    assert by_file[f"photos/{make_upn(0)}.jpg"]["result"] == "enrolled"
    assert by_file[f"photos/{make_upn(0)}_2.jpg"]["result"] == "enrolled"
    assert by_file[f"{make_upn(3)}.jpg"]["result"] == "enrolled"
    no_consent = by_file[f"{make_upn(1)}.jpg"]
    assert (no_consent["result"], no_consent["reason"]) == ("refused", "no_biometric_consent")
    assert "biometric consent" in no_consent["detail"]
    two = by_file[f"{make_upn(3)}_2.jpg"]
    assert (two["result"], two["reason"]) == ("refused", "several_faces")
    assert "two or more faces" in two["detail"]
    assert by_file[f"{make_upn(500)}.jpg"]["result"] == "unknown_upn"
    assert by_file["class photo.jpg"]["reason"] == "bad_name"
    assert body["counts"] == {"enrolled": 3, "refused": 3, "unknown_upn": 1,
                              "already_enrolled": 0}
    pupils = {p["external_id"]: p for p in client.get("/api/v1/pupils", headers=slt).json()}
    assert pupils[make_upn(0)]["templates"] == 2
    assert pupils[make_upn(3)]["templates"] == 1
    assert pupils[make_upn(1)]["templates"] == 0

    again = client.post("/api/v1/imports/reference-photos", headers=slt,
                        files={"file": ("photos.zip", _zip(files), "application/zip")})
    assert again.json()["counts"]["enrolled"] == 0
    assert again.json()["counts"]["already_enrolled"] == 3
    with runtime.sessions()() as session:
        assert session.execute(text("SELECT count(*) FROM face_templates")).scalar_one() == 3


def test_photos_too_small_and_without_a_face_are_refused_with_reasons(
    client: TestClient, faces: Path,
) -> None:
    from PIL import Image

    create_org("school")
    slt = token("school", "slt")
    client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", make_csv("arbor", range(7)), "text/csv")})
    src = Image.open(faces / "enrol" / "obama" / "obama_a.jpg").convert("RGB")
    small = src.resize((src.width * 90 // src.height, 90))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=92)
    blank = io.BytesIO()
    Image.new("RGB", (400, 400), (120, 160, 200)).save(blank, "JPEG")
    r = client.post("/api/v1/imports/reference-photos", headers=slt, files={"file": (
        "p.zip", _zip({f"{make_upn(0)}.jpg": buf.getvalue(),
                       f"{make_upn(6)}.jpg": blank.getvalue(),
                       f"{make_upn(3)}.png": b"not a picture"}), "application/zip")})
    by_upn = {f["upn"]: f for f in r.json()["files"]}
    tiny = by_upn[make_upn(0)]
    assert tiny["reason"] == "too_small"
    assert tiny["reason_data"]["face_px"] < tiny["reason_data"]["min_face_px"]
    assert "too small" in tiny["detail"]
    assert by_upn[make_upn(6)]["reason"] == "no_face"
    assert by_upn[make_upn(3)]["reason"] in ("unsupported_media_type", "undecodable")
    assert r.json()["counts"]["enrolled"] == 0


def test_not_a_zip_is_a_clear_422(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    r = client.post("/api/v1/imports/reference-photos", headers=slt,
                    files={"file": ("p.zip", b"PK nope", "application/zip")})
    assert r.status_code == 422 and r.json()["error"] == "not_a_zip"


def test_consent_withdrawn_while_templates_are_computed_is_refused_at_store(
    client: TestClient, faces: Path,
) -> None:
    from models.db import transaction
    from services.core.auth import authenticate
    from services.core.config import get_settings
    from services.imports import photos

    create_org("school")
    slt = token("school", "slt")
    client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", make_csv("sims", range(1)), "text/csv")})
    pupil = client.get("/api/v1/pupils", headers=slt).json()[0]
    with transaction(runtime.sessions(), write=False) as session:
        principal = authenticate(session, slt["Authorization"].split()[1])
        planned = photos.plan(session, principal, [
            (f"{make_upn(0)}.jpg", (faces / "enrol" / "obama" / "obama_a.jpg").read_bytes())])
        session.expunge_all()
    photos.compute(get_settings(), planned)
    assert len(planned.ready) == 1
    # The parent withdraws while the engine works.
    r = client.post(f"/api/v1/pupils/{pupil['id']}/biometric-consent", headers=slt,
                    json={"status": "withdrawn", "by": "parent", "evidence_ref": "letter"})
    assert r.status_code == 201
    with transaction(runtime.sessions()) as session:
        outcome = photos.store_all(session, runtime.store(), get_settings(), principal,
                                   planned)
    assert outcome.results[0].reason == "no_biometric_consent"
    with runtime.sessions()() as session:
        assert session.execute(text("SELECT count(*) FROM face_templates")).scalar_one() == 0


def test_biometric_withdrawn_in_a_later_export_erases_templates(
    client: TestClient, faces: Path,
) -> None:
    create_org("school")
    slt = token("school", "slt")
    client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", make_csv("sims", range(3)), "text/csv")})
    r = client.post("/api/v1/imports/reference-photos", headers=slt, files={"file": (
        "p.zip", _zip({f"{make_upn(0)}.jpg": (faces / "enrol" / "obama" / "obama_a.jpg")
                       .read_bytes()}), "application/zip")})
    assert r.json()["counts"]["enrolled"] == 1
    later = make_csv("sims", range(3), overrides={0: {"biometric": "withdrawn"}})
    body = client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", later, "text/csv")}).json()
    assert (body["updated"], body["consents_recorded"], body["templates_erased"]) == (1, 1, 1)
    pupil = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(0)}).json()[0]
    assert pupil["biometric_consent"] is False and pupil["templates"] == 0
