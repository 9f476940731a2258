"""Photography sessions and purposes on PostgreSQL: an upload outside an approved session,
by staff not on it, or on a device it does not allow is flagged for SLT; retention follows
the session's purpose; purposes come from the policy's list (422 with `allowed`)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from models.orm import Media
from services.core import runtime
from tests.support import run_cli, token

SESSION_CODES = {"outside_session", "not_on_session", "session_device_not_allowed"}
PRIMARY_PURPOSES = ["curriculum", "extra-school activities", "publicity",
                    "celebrating achievement"]


def _jpeg() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _org(tmp_path: Path, slug: str, extra: str = "") -> None:
    policy = (Path(__file__).resolve().parents[2] / "policies" / "primary-school.yaml")
    path = tmp_path / f"{slug}.yaml"
    path.write_text(policy.read_text() + extra)
    run_cli("org", "create", slug, "--name", slug.title(), "--policy", str(path))


def _people(client: TestClient, slt: dict[str, str]) -> dict[str, str]:
    r = client.get("/api/v1/sessions/people", headers=slt)
    assert r.status_code == 200, r.text
    return {p["name"]: p["id"] for p in r.json()}


def _upload(client: TestClient, headers: dict[str, str], **form: str) -> Any:
    data = {"event": "Sports day", "device": "school", **form}
    return client.post("/api/v1/media", headers=headers, data=data,
                       files={"file": ("x.jpg", _jpeg())})


def _codes(client: TestClient, headers: dict[str, str], media_id: str) -> dict[str, set[str]]:
    body = client.get(f"/api/v1/media/{media_id}", headers=headers).json()
    return {c: {r["code"] for r in d["reason_codes"]} for c, d in body["channels"].items()}


def _media_rows() -> int:
    with runtime.sessions()() as session:
        return int(session.scalar(select(func.count()).select_from(Media)) or 0)


def test_uploads_are_checked_against_their_session(client: TestClient,
                                                   tmp_path: Path) -> None:
    _org(tmp_path, "school")
    slt = token("school", "slt", "Mrs Head")
    ann, bob = token("school", "staff", "Ann Teacher"), token("school", "staff", "Bob Teacher")
    people = _people(client, slt)
    body = {"event": "Sports day", "purpose": "Extra-School  ACTIVITIES",
            "dates": ["2026-06-10", "2026-06-11"], "staff": [people["Ann Teacher"]],
            "devices": ["school"]}

    # Staff cannot make sessions; a purpose not in the list, or personal devices under a
    # policy that forbids them, are refused with the reason.
    assert client.post("/api/v1/sessions", headers=ann, json=body).status_code == 403
    r = client.post("/api/v1/sessions", headers=slt, json={**body, "purpose": "fun"})
    assert r.status_code == 422 and r.json()["allowed"] == PRIMARY_PURPOSES
    r = client.post("/api/v1/sessions", headers=slt,
                    json={**body, "devices": ["school", "personal"]})
    assert r.status_code == 422 and "personal" in r.json()["detail"]
    r = client.post("/api/v1/sessions", headers=slt, json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["purpose"] == "extra-school activities" and made["retention_days"] == 365
    sid = made["id"]
    # Staff list the sessions they are on, and only those.
    assert [s["id"] for s in client.get("/api/v1/sessions", headers=ann).json()] == [sid]
    assert client.get("/api/v1/sessions", headers=bob).json() == []

    # Within the session: no session flag; the purpose and its retention are the session's.
    r = _upload(client, ann, session_id=sid, captured_on="2026-06-10")
    assert r.status_code == 202, r.text
    within = r.json()["id"]
    detail = client.get(f"/api/v1/media/{within}", headers=slt).json()
    assert detail["purpose"] == "extra-school activities" and detail["session_id"] == sid
    assert detail["retention_until"] == str(date(2026, 6, 10) + timedelta(days=365))
    assert not SESSION_CODES & set().union(*_codes(client, slt, within).values())

    # Another day, someone not on it, a device it does not allow: flagged on every channel.
    expect = {
        _upload(client, ann, session_id=sid, captured_on="2026-06-12"): "outside_session",
        _upload(client, bob, session_id=sid, captured_on="2026-06-11"): "not_on_session",
        _upload(client, ann, session_id=sid, captured_on="2026-06-11",
                device="personal"): "session_device_not_allowed",
    }
    for response, code in expect.items():
        assert response.status_code == 202, response.text
        per_channel = _codes(client, slt, response.json()["id"])
        assert all(code in c for c in per_channel.values()), (code, per_channel)
        assert {code} == SESSION_CODES & set().union(*per_channel.values())

    # The review queue says so in words.
    outside = next(r.json()["id"] for r, c in expect.items() if c == "outside_session")
    queue = {i["media"]["id"]: {f["code"] for f in i["flags"]}
             for i in client.get("/api/v1/review", headers=slt).json()}
    assert "photography_session" in queue[outside]
    assert "photography_session" not in queue[within]

    # A purpose that is not the session's is refused, and so is a session that is not
    # this school's; an upload without a session works as before.
    r = _upload(client, ann, session_id=sid, purpose="publicity")
    assert r.status_code == 422 and r.json()["allowed"] == ["extra-school activities"]
    r = _upload(client, ann, session_id="5f1e7b0c-9a5e-4a57-9a38-6f0c1f7d2b11",
                purpose="publicity")
    assert r.status_code == 422 and r.json()["field"] == "session_id"
    r = _upload(client, ann, purpose="Publicity", captured_on="2026-01-05")
    assert r.status_code == 202, r.text
    plain = client.get(f"/api/v1/media/{r.json()['id']}", headers=slt).json()
    assert plain["session_id"] is None and plain["purpose"] == "publicity"
    assert plain["retention_until"] == str(date(2026, 1, 5) + timedelta(days=730))
    assert not SESSION_CODES & set().union(*_codes(client, slt, r.json()["id"]).values())


def test_an_unknown_purpose_is_refused_with_the_allowed_ones(client: TestClient,
                                                             tmp_path: Path) -> None:
    _org(tmp_path, "school")
    staff = token("school", "staff")
    before = _media_rows()
    for purpose in ("website", "", "prospectus"):
        r = _upload(client, staff, purpose=purpose)
        assert r.status_code == 422, r.text
        assert r.json()["allowed"] == PRIMARY_PURPOSES
    assert _media_rows() == before
    # Matched case-insensitively; stored as the policy spells it; retention follows it.
    r = _upload(client, staff, purpose="  CURRICULUM ", captured_on="2026-03-02")
    assert r.status_code == 202, r.text
    body = client.get(f"/api/v1/media/{r.json()['id']}", headers=staff).json()
    assert body["purpose"] == "curriculum"
    assert body["retention_until"] == "2027-03-02"
    # A curriculum photo is for displays and newsletters: other channels need SLT.
    codes = _codes(client, staff, r.json()["id"])
    assert "not_for_purpose" in codes["press"] and "not_for_purpose" not in codes["display"]


def test_where_sessions_are_required_an_upload_must_fall_in_one(client: TestClient,
                                                                tmp_path: Path) -> None:
    _org(tmp_path, "school", "\nphotography_sessions_required: true\n")
    slt, ann = token("school", "slt"), token("school", "staff", "Ann Teacher")
    people = _people(client, slt)
    r = client.post("/api/v1/sessions", headers=slt, json={
        "event": "Art week", "purpose": "curriculum", "dates": ["2026-02-02"],
        "staff": [people["Ann Teacher"]], "devices": ["school"]})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    # Covered by the session (day, staff, device, purpose): matched to it, not flagged.
    r = _upload(client, ann, purpose="curriculum", captured_on="2026-02-02")
    assert r.status_code == 202, r.text
    body = client.get(f"/api/v1/media/{r.json()['id']}", headers=slt).json()
    assert body["session_id"] == sid
    assert not SESSION_CODES & set().union(*_codes(client, slt, body["id"]).values())
    # Another day, or another purpose, is outside any session.
    for form in ({"purpose": "curriculum", "captured_on": "2026-02-03"},
                 {"purpose": "publicity", "captured_on": "2026-02-02"}):
        r = _upload(client, ann, **form)
        assert r.status_code == 202, r.text
        codes = _codes(client, slt, r.json()["id"])
        assert all("outside_session" in c for c in codes.values()), form
