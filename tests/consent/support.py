"""A small register for the consent tests, through the API, with real reference photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import Http


def add_pupil(http: Http, slt: dict[str, str], n: int, *, year_group: str = "Year 5",
              name: str = "Child Test") -> str:
    given, _, family = name.partition(" ")
    r = http.post("/api/v1/pupils", headers=slt, json={
        "external_id": f"UPN{n:04d}", "given_name": given, "family_name": family or given,
        "year_group": year_group})
    assert r.status_code == 201, r.text
    pupil_id: str = r.json()["id"]
    return pupil_id


def enrol_face(http: Http, slt: dict[str, str], faces: Path, identity: str, n: int,
               *, year_group: str = "Year 5") -> str:
    """A pupil with parental biometric consent and their reference photos; no consent to
    publish or to be photographed yet."""
    pupil_id = add_pupil(http, slt, n, year_group=year_group,
                         name=identity.replace("_", " ").title())
    r = http.post(f"/api/v1/pupils/{pupil_id}/biometric-consent", headers=slt, json={
        "status": "granted", "by": "parent", "evidence_ref": f"biometric form {n}"})
    assert r.status_code == 201, r.text
    for photo in sorted((faces / "enrol" / identity).iterdir()):
        r = http.post(f"/api/v1/pupils/{pupil_id}/reference-photos", headers=slt,
                      files={"file": (photo.name, photo.read_bytes())})
        assert r.status_code == 201, f"{photo}: {r.text}"
    return pupil_id


def consent_form(http: Http, slt: dict[str, str], pupil_id: str, consents: dict[str, str],
                 *, given_by: str = "guardian", evidence: str = "form 2026/1"
                 ) -> dict[str, Any]:
    r = http.put(f"/api/v1/pupils/{pupil_id}/consents", headers=slt, json={
        "consents": consents, "given_by": given_by, "evidence_ref": evidence})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def upload(http: Http, headers: dict[str, str], path: Path, **form: str) -> str:
    data = {"event": "Spring concert", "purpose": "publicity", "device": "school", **form}
    with path.open("rb") as fh:
        r = http.post("/api/v1/media", headers=headers, data=data,
                      files={"file": (path.name, fh)})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def codes(body: dict[str, Any], channel: str) -> list[str]:
    return [r["code"] for r in body["channels"][channel]["reason_codes"]]
