"""Consent as schools record it, on PostgreSQL: one form for every channel with one
evidence reference; refused and not returned are different things in the API, the gate's
reasons and the pages; from the policy's pupil_consent_from_year both a guardian's and the
pupil's own consent are needed."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from services.core import runtime
from services.core.config import get_settings
from services.screen import service as screening
from tests.consent.support import add_pupil, codes, consent_form
from tests.lifecycle.support import landscape, upload_bytes
from tests.support import create_org, token
from workers.engine.types import ScreenedFace

HTML = {"Accept": "text/html"}
ALL = ["website", "social_media", "newsletter", "press", "display"]


def _biometric(client: TestClient, slt: dict[str, str], pupil: str) -> None:
    r = client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=slt, json={
        "status": "granted", "by": "parent", "evidence_ref": "biometric form"})
    assert r.status_code == 201, r.text


def _screened_with(client: TestClient, staff: dict[str, str], pupil: str) -> str:
    """An upload whose one face the screening worker matched to `pupil` (the engine's
    result given, the worker's own save path)."""
    media_id = upload_bytes(client, staff, landscape())
    sessions, settings = runtime.sessions(), get_settings()
    claim = screening._claim(sessions, uuid.UUID(media_id))
    assert claim is not None
    screening._save(sessions, settings, uuid.UUID(media_id), claim,
                    screening._Found([ScreenedFace((40, 140, 160, 40), 0, "matched", pupil,
                                                   0.3)]))
    return media_id


def _decision(client: TestClient, slt: dict[str, str], media_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    return body


def test_one_form_records_every_channel_and_refused_is_not_not_returned(
        client: TestClient) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    pupil = add_pupil(client, slt, 1, name="Ada Lovelace")
    _biometric(client, slt, pupil)
    body = consent_form(client, slt, pupil, {"website": "granted", "newsletter": "refused",
                                             "capture": "granted"}, evidence="form 2026/17")
    states = body["consent_states"]
    assert states == {"website": "in_force", "newsletter": "refused", "capture": "in_force",
                      "social_media": "not_returned", "press": "not_returned",
                      "display": "not_returned"}
    history = client.get(f"/api/v1/pupils/{pupil}/consents", headers=slt).json()
    assert {h["evidence_ref"] for h in history} == {"form 2026/17"}
    assert sorted(h["channel"] for h in history) == ["capture", "newsletter", "website"]

    # An unknown channel on the form answers 422 with the allowed ones; nothing is written.
    r = client.put(f"/api/v1/pupils/{pupil}/consents", headers=slt, json={
        "consents": {"website": "withdrawn", "yearbook": "granted"}, "given_by": "guardian",
        "evidence_ref": "form 2"})
    assert r.status_code == 422 and "capture" in r.json()["allowed"]
    assert len(client.get(f"/api/v1/pupils/{pupil}/consents", headers=slt).json()) == 3
    # "not returned" is no record, not a status one can record.
    r = client.put(f"/api/v1/pupils/{pupil}/consents/press", headers=slt, json={
        "status": "not returned", "given_by": "guardian", "evidence_ref": "x"})
    assert r.status_code == 422

    # The gate's reasons say which: refused for the newsletter, no form for the press.
    media_id = _screened_with(client, staff, pupil)
    decision = _decision(client, slt, media_id)
    assert decision["channels"]["website"]["allowed"] is True
    assert "consent_refused" in codes(decision, "newsletter")
    assert "no_consent" not in codes(decision, "newsletter")
    assert "no_consent" in codes(decision, "press")
    texts = decision["channels"]["newsletter"]["reasons"]
    assert any("refused" in t for t in texts), texts
    assert any("not returned" in t for t in decision["channels"]["press"]["reasons"])

    # ... and so do the pages.
    page = _pupil_page(client, slt, pupil)
    assert _now(page, "newsletter") == "refused"
    assert _now(page, "press") == "not returned"
    assert _now(page, "website") == "yes"
    assert _now(page, "capture") == "yes"
    register = client.get("/register", headers=HTML).text
    assert 'data-channel="newsletter">refused' in register.replace("\n", "")
    assert 'data-channel="press">not returned' in register.replace("\n", "")

    # The form in the page records several channels with one evidence reference.
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    r = client.post(f"/register/{pupil}/consents", headers=HTML, follow_redirects=False,
                    data={"csrf": csrf.group(1), "given_by": "guardian",
                          "evidence_ref": "second form", "press": "granted",
                          "website": "withdrawn"})
    assert r.status_code == 303, r.text
    states = client.get(f"/api/v1/pupils/{pupil}", headers=slt).json()["consent_states"]
    assert states["press"] == "in_force" and states["website"] == "withdrawn"
    assert states["newsletter"] == "refused"


def test_from_the_policy_year_both_guardian_and_pupil_must_consent(
        client: TestClient) -> None:
    # Arts service: the pupil's own consent is needed from Year 9.
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    older = add_pupil(client, slt, 1, year_group="Year 10", name="Older Pupil")
    younger = add_pupil(client, slt, 2, year_group="Year 5", name="Younger Pupil")
    for pupil in (older, younger):
        _biometric(client, slt, pupil)
        body = consent_form(client, slt, pupil, {"website": "granted", "capture": "granted"})
    assert body["pupil_consent_needed"] is False
    older_now = client.get(f"/api/v1/pupils/{older}", headers=slt).json()
    assert older_now["pupil_consent_needed"] is True
    assert older_now["consent_states"]["website"] == "awaiting_pupil"

    young_media = _screened_with(client, staff, younger)
    assert _decision(client, slt, young_media)["channels"]["website"]["allowed"] is True
    media_id = _screened_with(client, staff, older)
    decision = _decision(client, slt, media_id)
    # A guardian's consent alone is not enough at this age, for capture either.
    assert "pupil_consent_missing" in codes(decision, "website")
    assert {"code": "no_capture_consent", "pupil_id": older, "state": "awaiting_pupil"} in (
        decision["channels"]["website"]["reason_codes"])

    # The pupil's own, on their own form: now in force.
    consent_form(client, slt, older, {"website": "granted", "capture": "granted"},
                 given_by="pupil", evidence="pupil's own form")
    assert _decision(client, slt, media_id)["channels"]["website"]["allowed"] is True
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=token(
        "school", "publisher"), json={"channel": "website"})
    assert r.status_code == 201, r.text

    # The pupil's own "no" stands even if a guardian grants again, and takes it down.
    consent_form(client, slt, older, {"website": "refused"}, given_by="pupil")
    consent_form(client, slt, older, {"website": "granted"}, given_by="guardian")
    decision = _decision(client, slt, media_id)
    refused = next(r for r in decision["channels"]["website"]["reason_codes"]
                   if r["code"] == "consent_refused")
    assert refused["given_by"] == "pupil"
    assert decision["publications"] == []


def _pupil_page(client: TestClient, slt: dict[str, str], pupil: str) -> str:
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", headers=HTML, follow_redirects=False, data={
        "token": slt["Authorization"].split()[1], "csrf": nonce.group(1), "next": "/"})
    assert r.status_code == 303, r.text
    text: str = client.get(f"/register/{pupil}", headers=HTML).text
    return text


def _now(page: str, channel: str) -> str:
    row = re.search(rf'<tr data-channel="{channel}">.*?data-role="now">([^<]*)<', page,
                    re.S)
    assert row, channel
    return row.group(1).strip()
