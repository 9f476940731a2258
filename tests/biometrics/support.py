"""Helpers for the template tests: pupils enrolled from chosen photos, a bearer token's
principal for calling domain functions directly, and reading what the database holds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from services.core import runtime
from services.core.auth import Principal, authenticate
from tests.support import run_cli


def secret(org: str, role: str, name: str | None = None) -> str:
    out = run_cli("token", "create", "--org", org, "--role", role, "--name", name or role)
    return out.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def principal(session: Any, token: str) -> Principal:
    return authenticate(session, token)


def pupil(client: TestClient, slt: dict[str, str], faces: Path, identity: str,
          photos: list[str], n: int, *, biometric: bool = True) -> str:
    """A pupil with parental biometric consent (if `biometric`), reference photos
    `photos` from shared/faces/enrol/<identity>/, and consent to be photographed and to
    the website."""
    given, _, family = identity.replace("_", " ").title().partition(" ")
    r = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": f"UPN{n:04d}", "given_name": given, "family_name": family or given,
        "year_group": "Year 5"})
    assert r.status_code == 201, r.text
    pupil_id: str = r.json()["id"]
    if biometric:
        r = client.post(f"/api/v1/pupils/{pupil_id}/biometric-consent", headers=slt,
                        json={"status": "granted", "by": "parent", "evidence_ref": f"form-{n}"})
        assert r.status_code == 201, r.text
    for name in photos:
        data = (faces / "enrol" / identity / name).read_bytes()
        r = client.post(f"/api/v1/pupils/{pupil_id}/reference-photos", headers=slt,
                        files={"file": (name, data)})
        assert r.status_code == 201, f"{name}: {r.text}"
    for kind in ("capture", "website"):
        r = client.put(f"/api/v1/pupils/{pupil_id}/consents/{kind}", headers=slt, json={
            "status": "granted", "given_by": "guardian", "evidence_ref": "letter"})
        assert r.status_code == 200, r.text
    return pupil_id


def sql(query: str, **params: Any) -> list[Any]:
    with runtime.sessions()() as session:
        return list(session.execute(text(query), params).all())


def template_rows(pupil_id: str) -> list[tuple[str, bytes]]:
    """(reference photo id, ciphertext) of each template of the pupil."""
    return [(str(r[0]), bytes(r[1])) for r in sql(
        "SELECT reference_photo_id, ciphertext FROM face_templates "
        "WHERE CAST(pupil_id AS TEXT) = :p ORDER BY created_at", p=pupil_id)]


def face_ids(media_id: str) -> list[str]:
    """The medium's faces, left to right."""
    return [str(r[0]) for r in sql(
        'SELECT id FROM faces WHERE CAST(media_id AS TEXT) = :m ORDER BY "left"', m=media_id)]


def epochs(slug: str = "school") -> tuple[int, int]:
    """(match_epoch, gallery_version) of the organisation."""
    (row,) = sql("SELECT match_epoch, gallery_version FROM organisations WHERE slug = :s",
                 s=slug)
    return int(row[0]), int(row[1])


def audit_actions() -> list[str]:
    return [str(r[0]) for r in sql("SELECT action FROM audit_events ORDER BY id")]


def wait_rescreened(media_id: str, timeout: float = 300) -> None:
    """Until the medium has been screened against the organisation's current gallery."""
    deadline = time.monotonic() + timeout
    while True:
        (row,) = sql(
            "SELECT m.status, m.screened_match_epoch, o.match_epoch, m.needs_rescreen "
            "FROM media m JOIN organisations o ON o.id = m.org_id "
            "WHERE CAST(m.id AS TEXT) = :m", m=media_id)
        status, screened, current, needs = row
        if status not in ("queued", "screening") and screened == current and not needs:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"media {media_id} not re-screened after {timeout}s: {row}")
        time.sleep(0.3)


def as_uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)
