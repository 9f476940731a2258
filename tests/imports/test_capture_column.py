"""The MIS import records capture consent ("may be photographed") from its column, in the
same history the pupil page and PUT /consents/capture use, and a pupil's own consent as a
separate giver from the guardian's."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.imports.support import make_upn
from tests.support import create_org, token

A, B = make_upn(1), make_upn(2)


def _csv(rows: list[str]) -> bytes:
    header = "upn,given_name,family_name,year_group,website,capture,given_by,evidence_ref"
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


def test_capture_column_is_imported_as_capture_consent_and_reimport_is_unchanged(
    client: TestClient,
) -> None:
    create_org("capture-import", "primary-school")
    slt = token("capture-import", "slt")
    data = _csv([f"{A},Ada,Example,Year 5,granted,granted,guardian,form-1",
                 f"{B},Ben,Example,Year 5,granted,refused,guardian,form-2"])
    r = client.post("/api/v1/imports/pupils", headers=slt,
                    files={"file": ("pupils.csv", data, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2
    assert r.json()["consents_recorded"] == 4
    pupils = client.get("/api/v1/pupils", headers=slt).json()
    states = {p["external_id"]: p["consent_states"] for p in pupils}
    assert states[A]["capture"] == "in_force"
    assert states[B]["capture"] == "refused"

    again = client.post("/api/v1/imports/pupils", headers=slt,
                        files={"file": ("pupils.csv", data, "text/csv")})
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == 2
    assert again.json()["consents_recorded"] == 0


def test_a_bad_capture_value_names_its_row_and_column_and_imports_nothing(
    client: TestClient,
) -> None:
    create_org("capture-bad", "primary-school")
    slt = token("capture-bad", "slt")
    data = _csv([f"{A},Ada,Example,Year 5,granted,perhaps,guardian,form-1"])
    r = client.post("/api/v1/imports/pupils", headers=slt,
                    files={"file": ("pupils.csv", data, "text/csv")})
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(2, "capture")]
    assert client.get("/api/v1/pupils", headers=slt).json() == []
