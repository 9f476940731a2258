"""Issue 12: no request shape that `/openapi.json` describes gets a 5xx.

schemathesis generates requests for every operation from the published schema (and
mutates them past it) and sends them with an admin token to the ASGI app, on
PostgreSQL and the S3 server. The number of examples per operation is bounded so the
whole run stays within about two minutes; a 5xx it finds is a bug, fixed with a
regression test named after the behaviour (tests/test_api_regressions.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.app import create_app
from tests.badinput.inputs import jpeg
from tests.support import create_org, token

EXAMPLES_PER_OPERATION = 25


# Loaded at import: pytest 9 has no fixture hook schemathesis' from_fixture can use. The
# app reads its database and store when a request comes, after `clean_db` set them up.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@pytest.fixture
def school(clean_db: None) -> dict[str, Any]:
    """An admin token, and a pupil and a medium that exist, so that generated requests
    reach past "not found" into the endpoints' own handling."""
    create_org("fuzzed", "primary-school")
    admin = token("fuzzed", "admin", "fuzz admin")
    with TestClient(create_app()) as http:
        pupil = http.post("/api/v1/pupils", headers=admin, json={
            "external_id": "FZ-1", "given_name": "Fuzz", "family_name": "Pupil",
            "year_group": "Y5"}).json()["id"]
        media = http.post("/api/v1/media", headers=admin,
                          files={"file": ("p.jpg", jpeg(), "image/jpeg")},
                          data={"event": "Fuzzing", "purpose": "publicity",
                                "device": "school"}).json()["id"]
    return {"admin": admin, "ids": {"pupil_id": pupil, "media_id": media}}


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_request_shape_gets_a_server_error(case: Any, school: dict[str, Any]) -> None:
    # Real ids where the path takes them; every other part is as generated.
    for name, value in school["ids"].items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value
    case.call_and_validate(headers=school["admin"], checks=[not_a_server_error])
