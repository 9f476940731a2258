"""MIS import on real PostgreSQL: 600 pupils in each header style, re-import changes
nothing, a file with bad rows imports nothing and names every error, --sync marks
leavers and erases their templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.core import runtime
from tests.imports.support import CHANNELS, expected_consents, make_csv, make_upn
from tests.support import create_org, token

N = 600


def _import(client: TestClient, headers: dict[str, str], data: bytes,
            **params: str) -> Any:
    return client.post("/api/v1/imports/pupils", headers=headers, params=params,
                       files={"file": ("pupils.csv", data, "text/csv")})


def _count(sql: str, **params: Any) -> int:
    with runtime.sessions()() as session:
        return int(session.execute(text(sql), params).scalar_one())


@pytest.mark.parametrize("style", ["sims", "arbor", "consentgate"])
def test_600_pupils_import_with_their_consents_and_reimport_changes_nothing(
    client: TestClient, style: str,
) -> None:
    create_org("school", "primary-school")
    slt = token("school", "slt")
    data = make_csv(style, range(N))
    r = _import(client, slt, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == style
    assert (body["created"], body["updated"], body["unchanged"], body["left"]) == (N, 0, 0, 0)
    assert body["consents_recorded"] == expected_consents(range(N))
    assert _count("SELECT count(*) FROM pupils") == N

    # The register shows what the file said, found by search and filters.
    page = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(7)})
    assert page.headers["x-total-count"] == "1"
    found = page.json()[0]
    assert found["family_name"] == "Family0007" and found["reg_group"] == "2B"
    # SIMS: the preferred forename is the name people use.
    assert found["given_name"] == "Given7"
    assert found["consents"]["display"]["status"] == "refused"
    assert found["consents"]["display"]["in_force"] is False
    assert found["consents"]["website"]["status"] == "withdrawn"
    assert "social_media" not in found["consents"]  # blank: nothing recorded
    assert found["consents"]["press"]["status"] == "granted"
    assert found["consents"]["press"]["in_force"] is True
    assert found["consents"]["press"]["evidence_ref"] == "form-7"
    year = client.get("/api/v1/pupils", headers=slt, params={"year_group": "Year 3",
                                                              "limit": 10})
    assert year.headers["x-total-count"] == str(N // 6) and len(year.json()) == 10
    biometric = _count("SELECT count(*) FROM biometric_consents")
    assert biometric == N // 3

    events = _count("SELECT count(*) FROM audit_events")
    again = _import(client, slt, data)
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"],
            again.json()["consents_recorded"]) == (0, 0, N, 0)
    assert _count("SELECT count(*) FROM publication_consents") == expected_consents(
        range(N)) - N // 3
    # Only the import's own summary event is new.
    assert _count("SELECT count(*) FROM audit_events") == events + 1


def test_changes_in_a_later_export_update_the_register(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    assert _import(client, slt, make_csv("arbor", range(20))).status_code == 200
    later = make_csv("arbor", range(22), overrides={
        3: {"year": "Year 9", "reg": "9Z"}, 4: {"website": "withdrawn"}})
    body = _import(client, slt, later).json()
    assert (body["created"], body["updated"], body["unchanged"]) == (2, 2, 18)
    p3 = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(3)}).json()[0]
    assert (p3["year_group"], p3["reg_group"]) == ("Year 9", "9Z")
    p4 = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(4)}).json()[0]
    assert p4["consents"]["website"]["status"] == "withdrawn"
    hist = client.get(f"/api/v1/pupils/{p4['id']}/consents", headers=slt).json()
    assert [h["status"] for h in hist if h["channel"] == "website"] == ["granted", "withdrawn"]


def test_a_file_with_bad_rows_imports_nothing_and_lists_every_error(
    client: TestClient,
) -> None:
    create_org("school")
    slt = token("school", "slt")
    good = make_upn(1)
    bad_check = "A" + make_upn(2)[1:] if not make_upn(2).startswith("A") else "B" + make_upn(2)[1:]
    rows = make_csv("sims", range(N), overrides={
        10: {"upn": bad_check},                 # line 12: check letter
        20: {"upn": good},                      # line 22: duplicate of line 3
        30: {"website": "yes"},                 # line 32: not a consent value
        40: {"family": ""},                     # line 42: missing surname
        50: {"upn": "E000200005001"},           # line 52: unknown local authority
    })
    r = _import(client, slt, rows)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "import_invalid"
    got = {(e["row"], e["column"], e["code"]) for e in body["errors"]}
    assert got == {
        (12, "UPN", "upn_check_letter"),
        (22, "UPN", "duplicate_upn"),
        (32, "Website", "consent_value"),
        (42, "Legal Surname", "missing"),
        (52, "UPN", "upn_local_authority"),
    }
    dup = next(e for e in body["errors"] if e["code"] == "duplicate_upn")
    assert "row 3" in dup["message"]
    assert _count("SELECT count(*) FROM pupils") == 0
    assert _count("SELECT count(*) FROM publication_consents") == 0
    assert _count("SELECT count(*) FROM audit_events WHERE action LIKE 'pupil.%'") == 0


def test_a_header_without_required_columns_is_one_clear_error(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    r = _import(client, slt, b"UPN,Surname\n" + make_upn(1).encode() + b",Hill\n")
    assert r.status_code == 422
    assert {(e["row"], e["code"]) for e in r.json()["errors"]} == {(1, "missing_column")}


def test_dry_run_reports_counts_and_changes_nothing(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    r = _import(client, slt, make_csv("consentgate", range(50)), dry_run="true")
    assert r.status_code == 200 and r.json()["created"] == 50 and r.json()["dry_run"]
    assert _count("SELECT count(*) FROM pupils") == 0


def test_staff_cannot_import(client: TestClient) -> None:
    create_org("school")
    staff = token("school", "staff")
    assert _import(client, staff, make_csv("sims", range(3))).status_code == 403


def test_sync_marks_leavers_and_erases_their_templates(client: TestClient,
                                                       faces: Path) -> None:
    create_org("school")
    slt = token("school", "slt")
    # Pupil 0 has biometric consent in the file (i % 3 == 0) and is enrolled.
    assert _import(client, slt, make_csv("arbor", range(N))).status_code == 200
    leaver = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(0)}).json()[0]
    photo = (faces / "enrol" / "obama" / "obama_a.jpg").read_bytes()
    r = client.post(f"/api/v1/pupils/{leaver['id']}/reference-photos", headers=slt,
                    files={"file": ("a.jpg", photo, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert _count("SELECT count(*) FROM face_templates") == 1

    # Without --sync, missing pupils stay.
    stays = _import(client, slt, make_csv("arbor", range(3, N)))
    assert stays.json()["left"] == 0
    r = _import(client, slt, make_csv("arbor", range(3, N)), sync="true")
    assert r.status_code == 200, r.text
    assert r.json()["left"] == 3 and r.json()["unchanged"] == N - 3
    gone = client.get(f"/api/v1/pupils/{leaver['id']}", headers=slt).json()
    assert gone["active"] is False and gone["templates"] == 0
    assert _count("SELECT count(*) FROM face_templates") == 0
    assert _count("SELECT count(*) FROM reference_photos") == 0
    assert _count("SELECT count(*) FROM audit_events WHERE action = 'biometrics.erased'") == 1
    assert _count("SELECT count(*) FROM audit_events WHERE action = "
                  "'pupil.active_changed'") == 3
    # A second sync with the same file finds nobody else to mark.
    assert _import(client, slt, make_csv("arbor", range(3, N)), sync="true").json()[
        "left"] == 0
    # Back in the file: on roll again, without their old template.
    back = _import(client, slt, make_csv("arbor", range(N)), sync="true").json()
    assert (back["updated"], back["left"], back["unchanged"]) == (3, 0, N - 3)
    again = client.get(f"/api/v1/pupils/{leaver['id']}", headers=slt).json()
    assert again["active"] is True and again["templates"] == 0
    # The chain still verifies after thousands of bulk-appended events.
    from tests.support import run_cli
    assert "intact" in run_cli("audit", "verify")


def test_channels_and_all_consent_values_are_accepted(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    r = _import(client, slt, make_csv("consentgate", range(5)))
    assert r.status_code == 200
    statuses = {c["status"] for p in client.get("/api/v1/pupils", headers=slt).json()
                for c in p["consents"].values()}
    assert statuses == {"granted", "refused", "withdrawn"}
    assert len(CHANNELS) == 5
