"""Whatever a school uploads, the import answers with its rows or with InvalidInput
listing errors that each name a row and a column: never a crash, never a half answer."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.errors import InvalidInput
from services.imports import photos
from services.imports.pupils import TEMPLATE_HEADER, parse, template_csv
from tests.imports.support import make_csv, make_upn

CELLS = st.one_of(
    st.sampled_from(["granted", "withdrawn", "refused", "", "maybe", "Year 5", "5B",
                     "guardian", "pupil", "form-1", make_upn(1), make_upn(2), "E000200005001",
                     "x" * 300, '"', ",", "\n"]),
    st.text(max_size=20),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=0, max_size=len(TEMPLATE_HEADER) + 2),
                max_size=12),
       st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
def test_any_file_is_rows_or_errors_with_row_and_column(rows: list[list[str]],
                                                        encoding: str) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TEMPLATE_HEADER)
    writer.writerows(rows)
    data = out.getvalue().encode(encoding, errors="replace")
    try:
        parsed, _cols, errors = parse(data)
    except InvalidInput as exc:
        assert all({"row", "column", "code", "message"} <= set(e) for e in
                   exc.details["errors"])
        return
    lines = {e.row for e in errors}
    # A row is either imported or has at least one error, never both.
    assert not lines & {r.line for r in parsed}
    assert all(e.row >= 1 and e.code and e.message for e in errors)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        parse(data)
    except InvalidInput as exc:
        assert exc.details["errors"], "an InvalidInput from the import always lists errors"


def test_the_template_parses_as_one_clean_row() -> None:
    rows, cols, errors = parse(template_csv().encode())
    assert errors == [] and len(rows) == 1 and cols.format == "consentgate"


def test_generated_exports_parse_clean_in_every_style() -> None:
    for style in ("sims", "arbor", "consentgate"):
        rows, cols, errors = parse(make_csv(style, range(50)))
        assert errors == [] and len(rows) == 50 and cols.format == style


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_a_damaged_zip_is_a_clear_error(noise: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{make_upn(1)}.jpg", b"\xff\xd8" + b"photo" * 200)
    raw = bytearray(buf.getvalue())
    # Overwrite part of the compressed data with noise.
    raw[40:40 + len(noise)] = noise[: max(0, len(raw) - 80)]
    try:
        photos.entries_from_zip(bytes(raw))
    except InvalidInput as exc:
        assert exc.details.get("error_code") in ("not_a_zip", "too_large", None)


def test_a_zip_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(photos, "MAX_TOTAL_BYTES", 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i in range(3):
            archive.writestr(f"{make_upn(i)}.jpg", b"x" * 600)
    with pytest.raises(InvalidInput) as exc:
        photos.entries_from_zip(buf.getvalue())
    assert exc.value.details["error_code"] == "too_large"
