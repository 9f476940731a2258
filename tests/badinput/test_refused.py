"""Issue 12: every kind of bad input is refused with a 4xx JSON body carrying an error
code (and the field, where one is to blame), on both backends, and leaves no row and
no stored object version behind."""

from __future__ import annotations

import pytest

from services.core.clock import local_today
from services.core.policy import Policy
from tests.badinput.backends import Backend
from tests.badinput.inputs import Case, cases

CASES = cases(local_today(Policy()))


def test_the_suite_covers_at_least_forty_kinds_of_bad_input() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 40


def _names_field(body: dict[str, object], field: str) -> bool:
    if body.get("field") == field:
        return True
    errors = body.get("errors")
    return isinstance(errors, list) and any(
        str(e.get("field", "")).split(".")[-1] == field for e in errors if isinstance(e, dict))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_json_code_and_leaves_nothing(
        backend: Backend, case: Case) -> None:
    r = backend.send(case)
    allowed = case.status if isinstance(case.status, tuple) else (case.status,)
    assert r.status_code in allowed, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if case.code is not None:
        assert body["error"] == case.code, body
    if case.field is not None:
        assert _names_field(body, case.field), body
    assert backend.rows() == {}
    assert backend.count_versions() == 0
