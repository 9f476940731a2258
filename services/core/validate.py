"""The one validation layer for text, metadata, dates and paging.

Pure functions, the same on every backend: SQLite stores a NUL byte or a lone
surrogate that PostgreSQL refuses with an error, so both are refused here before
either database sees them. What a person typed is refused with the field named
(`InvalidText`, `ImplausibleDate`); what a camera wrote (EXIF) is cleaned instead,
since nobody can correct it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from services.core.errors import InvalidInput

# The earliest believable date for a photo in a school archive; earlier dates are
# unset camera clocks (0001-01-01, 1970-01-01) or typos, and would purge the upload
# within the hour.
EARLIEST_CAPTURE = date(1990, 1, 1)

# Paging: a page holds at most MAX_LIMIT items; an offset past MAX_OFFSET is refused,
# since it exceeds any organisation's archive and very large values overflow the
# databases' integer types.
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000

# Camera metadata (EXIF Make, Model ...) is cut to this many characters, the width
# of its columns.
METADATA_MAX = 200

# Characters no field may hold: NUL (PostgreSQL refuses it in text) and U+FFFD, the
# replacement character a decoder puts where bytes were not valid UTF-8.
_REPLACEMENT = "\ufffd"


class InvalidText(InvalidInput):
    """A text field holds what no text should: NUL, broken UTF-8 or control bytes."""

    code = "invalid_text"


class TextTooLong(InvalidInput):
    code = "too_long"


class ImplausibleDate(InvalidInput):
    code = "implausible_date"


class InvalidPaging(InvalidInput):
    code = "invalid_paging"


def _is_surrogate(ch: str) -> bool:
    return 0xD800 <= ord(ch) <= 0xDFFF


def _bad_control(ch: str) -> bool:
    # Tabs and line breaks are text; other C0/C1 controls are not.
    return unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"


def problem_of(value: str) -> str | None:
    """What is wrong with `value` as text, in words, or None if nothing is."""
    for ch in value:
        if ch == "\x00":
            return "contains a NUL byte"
        if ch == _REPLACEMENT or _is_surrogate(ch):
            return "is not valid UTF-8 text"
        if _bad_control(ch):
            return f"contains the control character U+{ord(ch):04X}"
    return None


def text(value: str, *, field: str, max_length: int, required: bool = False) -> str:
    """`value` if it is clean text of at most `max_length` characters.

    Raises InvalidText (NUL, invalid UTF-8, control characters), TextTooLong, or
    InvalidInput when `required` and it is blank. Surrounding whitespace is kept:
    callers strip where the field's meaning allows.
    """
    problem = problem_of(value)
    if problem is not None:
        raise InvalidText(f"{field} {problem}", field=field)
    if len(value) > max_length:
        raise TextTooLong(f"{field} is longer than {max_length} characters", field=field,
                          max_length=max_length)
    if required and not value.strip():
        raise InvalidInput(f"{field} is required and may not be blank", field=field)
    return value


def raw_text(value: bytes, *, field: str, max_length: int) -> str:
    """Bytes a client sent as UTF-8 text, decoded strictly (see `text`)."""
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidText(f"{field} is not valid UTF-8 text", field=field) from exc
    return text(decoded, field=field, max_length=max_length)


def metadata(value: str | None, *, max_length: int = METADATA_MAX) -> str | None:
    """A metadata value (EXIF) cleaned: controls, NULs and broken characters dropped,
    whitespace collapsed at the ends, cut to `max_length`; None if nothing is left."""
    if value is None:
        return None
    kept = "".join(
        ch for ch in value
        if not (ch == "\x00" or ch == _REPLACEMENT or _is_surrogate(ch) or _bad_control(ch))
    )
    kept = kept.strip()[:max_length].strip()
    return kept or None


def captured_on(value: date, *, today: date) -> date:
    """A date a person gave for when a photo was taken: not after tomorrow (a camera
    abroad may be ahead of the school's clock) and not before EARLIEST_CAPTURE."""
    if value > today + timedelta(days=1):
        raise ImplausibleDate(f"captured_on {value.isoformat()} is in the future",
                              field="captured_on")
    if value < EARLIEST_CAPTURE:
        raise ImplausibleDate(
            f"captured_on {value.isoformat()} is before {EARLIEST_CAPTURE.year}",
            field="captured_on")
    return value


@dataclass(frozen=True)
class CameraDate:
    """An EXIF date after checking: `value` is None when it was missing or ignored;
    `ignored` holds the implausible date the camera wrote."""

    value: date | None
    ignored: date | None = None


def camera_date(value: date | None, *, today: date) -> CameraDate:
    """A camera's date is kept only if plausible (see `captured_on`); otherwise it is
    ignored and reported, never refused: the photo is fine, the clock was not."""
    if value is None:
        return CameraDate(None)
    if EARLIEST_CAPTURE <= value <= today + timedelta(days=1):
        return CameraDate(value)
    return CameraDate(None, ignored=value)


def paging(limit: int, offset: int) -> tuple[int, int]:
    """`limit` and `offset` within bounds. A limit outside 1..MAX_LIMIT and a negative
    offset are brought within them (as listings always did); an offset past MAX_OFFSET
    is refused with InvalidPaging naming it, since no archive is that long."""
    if offset > MAX_OFFSET:
        raise InvalidPaging(f"offset must be at most {MAX_OFFSET}", field="offset",
                            max_offset=MAX_OFFSET)
    return min(max(limit, 1), MAX_LIMIT), max(offset, 0)
