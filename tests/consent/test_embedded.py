"""The consent form, capture consent, photography sessions and purposes on the embedded
backend (SQLite, filesystem store, embedded worker) through `consentgate serve`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.support import POLICIES, embedded_server, run_cli_in


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with embedded_server(tmp_path) as server:
        yield server


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)
                    ).save(buf, "JPEG")
    return buf.getvalue()


def test_consent_forms_sessions_and_purposes_on_the_embedded_backend(
        served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    run_cli_in(env, "org", "create", "artforms", "--name", "ArtForms",
               "--policy", str(POLICIES / "arts-service.yaml"))

    def tok(role: str, name: str) -> dict[str, str]:
        secret = run_cli_in(env, "token", "create", "--org", "artforms", "--role", role,
                            "--name", name).strip().splitlines()[-1]
        return {"Authorization": f"Bearer {secret}"}

    slt, tutor = tok("slt", "Head of service"), tok("staff", "Drama tutor")
    with httpx.Client(base_url=base, timeout=60) as http:
        r = http.post("/api/v1/pupils", headers=slt, json={
            "external_id": "UPN1", "given_name": "Ada", "family_name": "Lovelace",
            "year_group": "Year 10"})
        assert r.status_code == 201, r.text
        pupil = r.json()["id"]
        r = http.put(f"/api/v1/pupils/{pupil}/consents", headers=slt, json={
            "consents": {"website": "granted", "press": "refused", "capture": "granted"},
            "given_by": "guardian", "evidence_ref": "form 1"})
        assert r.status_code == 200, r.text
        states = r.json()["consent_states"]
        # Year 10 under this policy: the pupil's own consent is needed too.
        assert states["website"] == "awaiting_pupil" and states["press"] == "refused"
        assert states["newsletter"] == "not_returned"
        r = http.put(f"/api/v1/pupils/{pupil}/consents/capture", headers=slt, json={
            "status": "granted", "given_by": "pupil", "evidence_ref": "own form"})
        assert r.status_code == 200 and r.json()["consent_states"]["capture"] == "in_force"

        people = {p["name"]: p["id"] for p in http.get("/api/v1/sessions/people",
                                                        headers=slt).json()}
        r = http.post("/api/v1/sessions", headers=slt, json={
            "event": "Summer show", "purpose": "Publicity", "dates": ["2026-07-01"],
            "staff": [people["Drama tutor"]], "devices": ["school", "personal"]})
        assert r.status_code == 201, r.text
        sid = r.json()["id"]

        def upload(**form: str) -> httpx.Response:
            return http.post("/api/v1/media", headers=tutor,
                             data={"event": "Summer show", "device": "school", **form},
                             files={"file": ("x.jpg", _jpeg())})

        r = upload(purpose="yearbook")
        assert r.status_code == 422 and "celebrating achievement" in r.json()["allowed"]
        inside = upload(session_id=sid, captured_on="2026-07-01")
        outside = upload(session_id=sid, captured_on="2026-07-02")
        assert inside.status_code == outside.status_code == 202
        for response, flagged in ((inside, False), (outside, True)):
            body = http.get(f"/api/v1/media/{response.json()['id']}", headers=slt).json()
            assert body["purpose"] == "publicity" and body["session_id"] == sid
            assert body["retention_until"] == ("2028-06-30" if not flagged else "2028-07-01")
            codes = {c["code"] for c in body["channels"]["website"]["reason_codes"]}
            assert ("outside_session" in codes) is flagged
