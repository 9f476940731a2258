"""Issue 12: what a camera wrote is cleaned, not refused, and a photo with data after
its end is stored re-encoded; on both backends."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pillow_heif
from PIL import Image

from services.core.clock import local_today
from services.core.policy import Policy
from services.upload.trailing import trailing_bytes
from tests.badinput.backends import Backend
from tests.badinput.inputs import jpeg, pixels, png, webp, zip_archive

EXIF_IFD, MAKE, MODEL, DATETIME_ORIGINAL = 0x8769, 0x010F, 0x0110, 0x9003


def exif_jpeg(make: str | None = None, model: str | None = None,
              taken: str | None = None) -> bytes:
    exif = Image.Exif()
    if make is not None:
        exif[MAKE] = make
    if model is not None:
        exif[MODEL] = model
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def post(backend: Backend, data: bytes, name: str = "photo.jpg", mime: str = "image/jpeg",
         **form: str) -> dict[str, Any]:
    r = backend.http.post("/api/v1/media", headers=backend.tokens["staff"],
                          files={"file": (name, data, mime)},
                          data={"event": "Sports day", "purpose": "publicity",
                                "device": "school", **form})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def test_an_overlong_exif_make_is_cut_and_nul_bytes_dropped_not_refused(
        backend: Backend) -> None:
    body = post(backend, exif_jpeg(make="Canon" + "X" * 400, model="EOS\x00 5D\x00"))
    make = backend.media_column(body["id"], "camera_make")
    model = backend.media_column(body["id"], "camera_model")
    assert make.startswith("Canon") and len(make) == 200
    assert "\x00" not in model and model.startswith("EOS")


def test_an_exif_date_of_9999_12_31_is_ignored_with_a_notice_and_retention_counts_from_upload(
        backend: Backend) -> None:
    body = post(backend, exif_jpeg(taken="9999:12:31 23:59:59"))
    assert any("9999-12-31" in n and "ignored" in n for n in body["notices"]), body
    assert backend.media_column(body["id"], "captured_on") is None
    retention = backend.media_column(body["id"], "retention_until")
    retention = date.fromisoformat(retention) if isinstance(retention, str) else retention
    today = local_today(Policy(timezone="Europe/London"))
    # primary-school.yaml keeps photos 730 days.
    assert abs((retention - (today + timedelta(days=730))).days) <= 1


def test_an_exif_date_of_1900_is_ignored_so_the_photo_is_not_purged_at_once(
        backend: Backend) -> None:
    body = post(backend, exif_jpeg(taken="1900:01:01 00:00:00"))
    assert backend.media_column(body["id"], "captured_on") is None
    assert not any("deleted at the next retention purge" in n for n in body["notices"])


def test_a_plausible_exif_date_still_sets_captured_on(backend: Backend) -> None:
    body = post(backend, exif_jpeg(taken="2024:06:01 10:00:00"))
    captured = backend.media_column(body["id"], "captured_on")
    assert str(captured) == "2024-06-01"


def test_a_jpeg_zip_polyglot_is_stored_re_encoded_without_its_payload(
        backend: Backend) -> None:
    payload = zip_archive()
    body = post(backend, jpeg() + payload)
    assert any("only the photo was kept" in n for n in body["notices"]), body
    stored = backend.read_object(backend.media_column(body["id"], "original_key"))
    assert stored.startswith(b"\xff\xd8") and payload not in stored
    assert b"PK\x03\x04" not in stored
    assert trailing_bytes(stored, "image/jpeg") == 0
    assert backend.media_column(body["id"], "size_bytes") == len(stored)
    with Image.open(io.BytesIO(stored)) as im:
        assert im.size == (320, 240)


def test_png_and_webp_with_trailing_data_are_stored_as_png_without_it(
        backend: Backend) -> None:
    for data, name, mime in ((png(), "a.png", "image/png"), (webp(), "a.webp", "image/webp")):
        body = post(backend, data + b"TRAILING" * 100, name, mime)
        key = backend.media_column(body["id"], "original_key")
        stored = backend.read_object(key)
        assert key.endswith(".png") and backend.media_column(body["id"], "mime") == "image/png"
        assert b"TRAILING" not in stored and trailing_bytes(stored, "image/png") == 0


def test_a_photo_with_nothing_after_its_end_is_kept_byte_for_byte(backend: Backend) -> None:
    for data, name, mime in ((jpeg(), "a.jpg", "image/jpeg"), (png(), "a.png", "image/png"),
                             (webp(), "a.webp", "image/webp")):
        body = post(backend, data, name, mime)
        assert backend.read_object(backend.media_column(body["id"], "original_key")) == data
        assert not any("only the photo was kept" in n for n in body["notices"])


def test_a_heic_with_trailing_data_is_stored_as_a_jpeg_without_it(backend: Backend) -> None:
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, "HEIF", quality=80)
    body = post(backend, out.getvalue() + zip_archive(), "a.heic", "image/heic")
    key = backend.media_column(body["id"], "original_key")
    stored = backend.read_object(key)
    assert key.endswith(".jpg") and backend.media_column(body["id"], "mime") == "image/jpeg"
    assert b"PK\x03\x04" not in stored and trailing_bytes(stored, "image/jpeg") == 0
