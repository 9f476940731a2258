"""The pure parts of issue 12's validation: services/core/validate.py and
services/upload/trailing.py."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from services.core import validate
from services.upload.trailing import trailing_bytes

TODAY = date(2026, 12, 2)


@given(st.text())
def test_text_is_refused_exactly_when_it_holds_nul_broken_or_control_characters(s: str) -> None:
    bad = any(c == "\x00" or c == "\ufffd" or 0xD800 <= ord(c) <= 0xDFFF
              or (ord(c) < 32 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F for c in s)
    try:
        assert validate.text(s, field="event", max_length=10**6) == s
        assert not bad
    except validate.InvalidText as exc:
        assert bad and exc.details["field"] == "event"


@given(st.text())
def test_metadata_is_always_clean_text_within_its_bound(s: str) -> None:
    cleaned = validate.metadata(s)
    if cleaned is not None:
        assert len(cleaned) <= validate.METADATA_MAX
        assert validate.problem_of(cleaned) is None
        assert cleaned == cleaned.strip()


def test_raw_bytes_that_are_not_utf8_are_refused_naming_the_field() -> None:
    with pytest.raises(validate.InvalidText, match="purpose is not valid UTF-8"):
        validate.raw_text(b"web\xc3site", field="purpose", max_length=500)
    assert validate.raw_text("café".encode(), field="purpose", max_length=500) == "café"


def test_text_over_its_bound_is_refused() -> None:
    with pytest.raises(validate.TextTooLong):
        validate.text("x" * 201, field="event", max_length=200)


@pytest.mark.parametrize("when", [date(9999, 12, 31), date(1, 1, 1), date(1989, 12, 31),
                                  TODAY + timedelta(days=2)])
def test_implausible_capture_dates_are_refused_and_camera_dates_ignored(when: date) -> None:
    with pytest.raises(validate.ImplausibleDate):
        validate.captured_on(when, today=TODAY)
    assert validate.camera_date(when, today=TODAY) == validate.CameraDate(None, ignored=when)


@pytest.mark.parametrize("when", [date(1990, 1, 1), TODAY, TODAY + timedelta(days=1)])
def test_plausible_capture_dates_are_kept(when: date) -> None:
    assert validate.captured_on(when, today=TODAY) == when
    assert validate.camera_date(when, today=TODAY).value == when


def test_paging_clamps_the_limit_and_refuses_an_offset_past_the_bound() -> None:
    assert validate.paging(0, -5) == (1, 0)
    assert validate.paging(10**9, 10) == (validate.MAX_LIMIT, 10)
    with pytest.raises(validate.InvalidPaging):
        validate.paging(50, validate.MAX_OFFSET + 1)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 96), height=st.integers(1, 96), quality=st.integers(5, 100),
       progressive=st.booleans(), fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]),
       tail=st.binary(max_size=64), seed=st.integers(0, 2**16))
def test_trailing_bytes_are_exactly_what_was_appended_to_an_encoded_image(
        width: int, height: int, quality: int, progressive: bool, fmt: str, tail: bytes,
        seed: int) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    options = {"JPEG": {"quality": quality, "progressive": progressive},
               "PNG": {}, "WEBP": {"quality": quality}}[fmt]
    Image.fromarray(rgb).save(out, fmt, **options)
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    data = out.getvalue()
    assert trailing_bytes(data, mime) == 0
    assert trailing_bytes(data + tail, mime) == len(tail)


def test_a_jpeg_whose_markers_cannot_be_followed_counts_as_trailing() -> None:
    # None: not sure where it ends, so it is not kept as it came.
    assert trailing_bytes(b"\xff\xd8\x00\x00garbage", "image/jpeg") is None
