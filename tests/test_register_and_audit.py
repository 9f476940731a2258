"""Consent rules that do not need faces: biometric consent under POFA s.26, append-only
consent history, and the tamper-evident audit trail."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.cli import main as cli
from services.core import runtime
from tests.support import create_org, token

PUPIL = {"external_id": "UPN1", "given_name": "Sam", "family_name": "Hill", "year_group": "Y3"}


def _pupil(client: TestClient, slt: dict[str, str]) -> str:
    r = client.post("/api/v1/pupils", headers=slt, json=PUPIL)
    assert r.status_code == 201, r.text
    pupil_id: str = r.json()["id"]
    return pupil_id


def _biometric(client: TestClient, slt: dict[str, str], pid: str, status: str, by: str) -> bool:
    r = client.post(f"/api/v1/pupils/{pid}/biometric-consent", headers=slt,
                    json={"status": status, "by": by, "evidence_ref": "form"})
    assert r.status_code == 201, r.text
    current: bool = r.json()["biometric_consent"]
    return current


def test_biometric_consent_needs_a_parent_and_any_objection_overrides(
    client: TestClient,
) -> None:
    create_org("school")
    slt = token("school", "slt")
    pid = _pupil(client, slt)
    assert client.get(f"/api/v1/pupils/{pid}", headers=slt).json()["biometric_consent"] is False
    # A pupil cannot consent alone.
    assert _biometric(client, slt, pid, "granted", "pupil") is False
    assert _biometric(client, slt, pid, "granted", "parent") is True
    # The pupil's objection overrides the parent's consent...
    assert _biometric(client, slt, pid, "objected", "pupil") is False
    # ...and a parent cannot override it by granting again.
    assert _biometric(client, slt, pid, "granted", "parent") is False
    assert _biometric(client, slt, pid, "granted", "pupil") is True
    assert _biometric(client, slt, pid, "withdrawn", "parent") is False


def test_enrolment_without_biometric_consent_is_refused_with_409(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    pid = _pupil(client, slt)
    r = client.post(f"/api/v1/pupils/{pid}/reference-photos", headers=slt,
                    files={"file": ("a.jpg", b"\xff\xd8\xff" + b"\0" * 64)})
    assert r.status_code == 409
    assert "biometric consent" in r.json()["detail"]
    assert sum(1 for _ in runtime.store().list_keys("references/")) == 0


def test_consent_history_is_appended_never_overwritten(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    pid = _pupil(client, slt)
    for status in ("granted", "withdrawn", "granted"):
        r = client.put(f"/api/v1/pupils/{pid}/consents/newsletter", headers=slt,
                       json={"status": status, "given_by": "guardian", "evidence_ref": status,
                             "expires_on": "2030-01-01"})
        assert r.status_code == 200
    history = client.get(f"/api/v1/pupils/{pid}/consents", headers=slt).json()
    assert [h["status"] for h in history] == ["granted", "withdrawn", "granted"]
    current = client.get(f"/api/v1/pupils/{pid}", headers=slt).json()["consents"]
    assert current["newsletter"]["status"] == "granted"
    assert current["newsletter"]["in_force"] is True
    r = client.put(f"/api/v1/pupils/{pid}/consents/newsletter", headers=slt,
                   json={"status": "granted", "given_by": "guardian", "evidence_ref": "x",
                         "expires_on": "2020-01-01"})
    assert r.json()["consents"]["newsletter"]["in_force"] is False


def test_template_age_says_when_a_pupil_needs_a_new_enrolment_photo(
    client: TestClient, faces: Path
) -> None:
    create_org("school")  # policy without reenrol_after_days: the default, 365 days
    slt = token("school", "slt")
    pid = _pupil(client, slt)
    _biometric(client, slt, pid, "granted", "parent")
    body = client.get(f"/api/v1/pupils/{pid}", headers=slt).json()
    assert (body["template_age_days"], body["needs_reenrolment"]) == (None, True)

    def enrol(photo: str) -> None:
        r = client.post(f"/api/v1/pupils/{pid}/reference-photos", headers=slt,
                        files={"file": (photo, (faces / "enrol" / "kit_harington" / photo)
                                        .read_bytes())})
        assert r.status_code == 201, r.text

    def backdate(days: int) -> None:
        with runtime.sessions()() as session:
            session.execute(text("UPDATE face_templates SET created_at = created_at - "
                                 "make_interval(days => :d) WHERE pupil_id = :p"),
                            {"d": days, "p": pid})
            session.commit()

    enrol("kit_a.jpg")
    body = client.get(f"/api/v1/pupils/{pid}", headers=slt).json()
    assert (body["templates"], body["template_age_days"], body["needs_reenrolment"]) == (
        1, 0, False)
    backdate(365)
    body = client.get(f"/api/v1/pupils/{pid}", headers=slt).json()
    assert (body["template_age_days"], body["needs_reenrolment"]) == (365, False)
    backdate(60)
    listed = client.get("/api/v1/pupils", headers=slt).json()
    assert [(p["template_age_days"], p["needs_reenrolment"]) for p in listed] == [(425, True)]

    # The register page says so in plain words, and links to the pupil.
    page = client.get("/signin", headers={"Accept": "text/html"})
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", follow_redirects=False, data={
        "token": slt["Authorization"].split()[1], "csrf": nonce.group(1), "next": "/register"})
    assert r.status_code == 303, r.text
    register = client.get("/register", headers={"Accept": "text/html"}).text
    assert "Photo on file is 13 months old — take a new one" in register

    # A new photo counts from its own date: the newest template decides.
    enrol("kit_b.jpg")
    body = client.get(f"/api/v1/pupils/{pid}", headers=slt).json()
    assert (body["templates"], body["template_age_days"], body["needs_reenrolment"]) == (
        2, 0, False)
    assert "take a new one" not in client.get("/register", headers={"Accept": "text/html"}).text


def test_duplicate_pupil_is_a_conflict(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    _pupil(client, slt)
    r = client.post("/api/v1/pupils", headers=slt, json=PUPIL)
    assert r.status_code == 409


def test_audit_verify_passes_then_names_the_altered_event(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    pid = _pupil(client, slt)
    _biometric(client, slt, pid, "granted", "parent")
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with runtime.sessions()() as session:
        victim = session.execute(
            text("SELECT id FROM audit_events WHERE action = 'biometric_consent.recorded'")
        ).scalar_one()
        session.execute(text("UPDATE audit_events SET actor = 'someone-else' WHERE id = :i"),
                        {"i": victim})
        session.commit()
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"event {victim}" in broken.output
