"""Bad inputs, made in code: files (PIL, numpy, OpenCV for videos) and requests.

Each `Case` is one request a client might send; all of them must be refused with a
4xx JSON body that has an error code, and leave no media row and no stored object.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

# The upload limit the suite runs with (CONSENTGATE_MAX_UPLOAD_BYTES), small enough to
# send an over-size file quickly.
UPLOAD_LIMIT = 4 * 1024 * 1024

_rng = np.random.default_rng(12)


def pixels(width: int = 320, height: int = 240) -> np.ndarray[Any, np.dtype[np.uint8]]:
    # Smooth gradients plus noise: compresses like a photo, not like a flat colour.
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    noise = _rng.integers(0, 40, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def image_bytes(fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, fmt, **save)
    return out.getvalue()


def jpeg(**save: Any) -> bytes:
    return image_bytes("JPEG", quality=90, **save)


def png() -> bytes:
    return image_bytes("PNG")


def webp() -> bytes:
    return image_bytes("WEBP", quality=80)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def zip_archive() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("payload.txt", "a hidden payload " * 50)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixel data at all."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def jpeg_header_only(width: int, height: int) -> bytes:
    """SOI and a baseline SOF0 claiming width x height, then nothing."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"".join(
        bytes((i, 0x11, 0)) for i in (1, 2, 3))
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof


def pixel_bomb() -> bytes:
    """A real PNG of 10,000 x 10,000 black pixels (100 MP): about 100 kB on disk."""
    width = height = 10_000
    row = b"\x00" + b"\x00" * width  # filter byte + one grey byte per pixel
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def gif() -> bytes:
    return image_bytes("GIF")


def bmp() -> bytes:
    return image_bytes("BMP")


def tiff() -> bytes:
    return image_bytes("TIFF")


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>')


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body) + 8) + kind + body


def heic_like() -> bytes:
    """An ISO media file that says HEIC and holds nothing an image decoder can read."""
    ftyp = box(b"ftyp", b"heic" + b"\x00\x00\x00\x00" + b"mif1heic")
    return ftyp + box(b"meta", b"\x00" * 4 + box(b"hdlr", b"\x00" * 8 + b"pict" + b"\x00" * 13)) \
        + box(b"mdat", _rng.bytes(2000))


def audio_only_mp4() -> bytes:
    """An MP4 (brand isom) with one sound track and no video track."""
    mvhd = box(b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, 1000)
               + b"\x00\x01\x00\x00\x01\x00" + b"\x00" * 10
               + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
               + b"\x00" * 24 + struct.pack(">I", 2))
    tkhd = box(b"tkhd", b"\x00\x00\x00\x07" + struct.pack(">IIIII", 0, 0, 1, 0, 1000)
               + b"\x00" * 8 + b"\x00\x00\x00\x00\x01\x00\x00\x00"
               + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
               + struct.pack(">II", 0, 0))
    mdhd = box(b"mdhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 8000, 8000) + b"\x55\xc4\x00\x00")
    hdlr = box(b"hdlr", b"\x00" * 8 + b"soun" + b"\x00" * 12 + b"SoundHandler\x00")
    smhd = box(b"smhd", b"\x00" * 8)
    stsd_entry = box(b"mp4a", b"\x00" * 6 + b"\x00\x01" + b"\x00" * 8
                     + struct.pack(">HHHHI", 1, 16, 0, 0, 8000 << 16))
    stbl = box(b"stbl", box(b"stsd", b"\x00" * 4 + struct.pack(">I", 1) + stsd_entry)
               + box(b"stts", b"\x00" * 4 + struct.pack(">III", 1, 1, 8000))
               + box(b"stsc", b"\x00" * 4 + struct.pack(">IIII", 1, 1, 1, 1))
               + box(b"stsz", b"\x00" * 4 + struct.pack(">III", 0, 1, 100))
               + box(b"stco", b"\x00" * 4 + struct.pack(">II", 1, 0)))
    minf = box(b"minf", smhd + box(b"dinf", box(b"dref", b"\x00" * 4 + struct.pack(">I", 1)
                                                + box(b"url ", b"\x00\x00\x00\x01")))
               + stbl)
    moov = box(b"moov", mvhd + box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf)))
    ftyp = box(b"ftyp", b"isom" + b"\x00\x00\x02\x00" + b"isomiso2mp41")
    return ftyp + moov + box(b"mdat", b"\x00" * 100)


def mp4_clip(frames: int = 12) -> bytes:
    """A real MP4 (MPEG-4 Part 2) clip written by OpenCV."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
        for i in range(frames):
            frame = np.roll(pixels(160, 120), i * 4, axis=1)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        return path.read_bytes()


def corrupt_video() -> bytes:
    """An MP4 header with the rest of the file replaced by noise."""
    clip = mp4_clip()
    return clip[:32] + _rng.bytes(len(clip) - 32)


def zero_length_video() -> bytes:
    """An MP4 whose only box is an empty ftyp, and no movie at all."""
    return box(b"ftyp", b"isom\x00\x00\x02\x00isom")


def oversize_jpeg(extra: int) -> bytes:
    return jpeg() + b"\x00" * (UPLOAD_LIMIT + extra)


@dataclass(frozen=True)
class Case:
    """One request. `files` maps a field name to (filename, bytes, content type);
    `data` holds the other form fields (bytes for raw, possibly invalid, text)."""

    id: str
    method: str = "POST"
    path: str = "/api/v1/media"
    role: str = "staff"
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str | bytes] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | tuple[int, ...] = 422
    code: str | None = None
    # The field the error must name, where the API names one.
    field: str | None = None


FORM: dict[str, str | bytes] = {"event": "Sports day", "purpose": "publicity",
                                "device": "school"}


def upload(id: str, data: bytes | Callable[[], bytes], name: str = "photo.jpg",
           mime: str = "image/jpeg", *, status: int | tuple[int, ...] = 422,
           code: str | None = None, **form: str | bytes) -> Case:
    body = data() if callable(data) else data
    return Case(id=id, files={"file": (name, body, mime)}, data={**FORM, **form},
                status=status, code=code)


def form_case(id: str, *, field_name: str | None, status: int = 422, code: str | None = None,
              drop: tuple[str, ...] = (), file_field: str = "file",
              **form: str | bytes) -> Case:
    data = {k: v for k, v in {**FORM, **form}.items() if k not in drop}
    return Case(id=id, files={file_field: ("photo.jpg", jpeg(), "image/jpeg")}, data=data,
                status=status, code=code, field=field_name)


def cases(today: date) -> list[Case]:
    """Every kind of bad input, built fresh (some are megabytes)."""
    j, p, w = jpeg(), png(), webp()
    tomorrow_but_one = (today + timedelta(days=2)).isoformat()
    return [
        # ---- files
        upload("empty file", b"", code="invalid"),
        upload("plain text", b"just some words, not a photo\n", "notes.txt", "text/plain",
               status=415, code="unsupported_media_type"),
        upload("pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", "doc.pdf",
               "application/pdf", status=415, code="unsupported_media_type"),
        upload("zip archive", zip_archive, "photos.zip", "application/zip",
               status=415, code="unsupported_media_type"),
        upload("zip named .jpg", zip_archive, "photo.jpg", "image/jpeg",
               status=415, code="unsupported_media_type"),
        upload("svg", SVG, "drawing.svg", "image/svg+xml", status=415,
               code="unsupported_media_type"),
        upload("gif", gif, "anim.gif", "image/gif", status=415, code="unsupported_media_type"),
        upload("bmp", bmp, "photo.bmp", "image/bmp", status=415,
               code="unsupported_media_type"),
        upload("tiff", tiff, "photo.tif", "image/tiff", status=415,
               code="unsupported_media_type"),
        upload("heic-like bytes", heic_like, "photo.heic", "image/heic", code="undecodable"),
        upload("truncated jpeg", truncated(j), code="undecodable"),
        upload("jpeg cut after header", j[:400], code="undecodable"),
        upload("truncated png", truncated(p), "photo.png", "image/png", code="undecodable"),
        upload("truncated webp", truncated(w), "photo.webp", "image/webp", code="undecodable"),
        upload("jpeg with a corrupt body", j[:600] + _rng.bytes(len(j) - 600),
               code="undecodable"),
        upload("pixel bomb png", pixel_bomb, "bomb.png", "image/png", status=413,
               code="too_large"),
        upload("header-only huge png", png_header_only(60_000, 60_000), "huge.png",
               "image/png", status=413, code="too_large"),
        upload("header-only huge jpeg", jpeg_header_only(65_000, 65_000), status=413,
               code="too_large"),
        upload("zero-size png", png_header_only(0, 0), "empty.png", "image/png",
               code="undecodable"),
        upload("audio-only mp4", audio_only_mp4, "sound.mp4", "video/mp4", code="undecodable"),
        upload("corrupt video", corrupt_video, "clip.mp4", "video/mp4", code="undecodable"),
        upload("zero-length video", zero_length_video, "clip.mp4", "video/mp4",
               code="undecodable"),
        upload("truncated video", lambda: truncated(mp4_clip(), 0.05), "clip.mp4",
               "video/mp4", code="undecodable"),
        upload("over the size limit", oversize_jpeg(1024), status=413, code="too_large"),
        upload("far over the size limit", oversize_jpeg(1024 * 1024), status=413,
               code="too_large"),
        # ---- multipart fields
        form_case("no file field", field_name="file", drop=(), file_field="photo"),
        form_case("file field renamed Files", field_name="file", file_field="Files"),
        form_case("no event", field_name="event", drop=("event",)),
        form_case("event renamed Event", field_name="event", drop=("event",), Event="x"),
        form_case("no purpose", field_name="purpose", drop=("purpose",)),
        form_case("no device", field_name="device", drop=("device",)),
        form_case("unknown device", field_name="device", device="phone"),
        form_case("blank event", field_name="event", event="   "),
        form_case("event too long", field_name="event", event="x" * 201),
        form_case("purpose too long", field_name="purpose", purpose="x" * 501),
        # ---- text
        form_case("NUL in event", field_name="event", code="invalid_text",
                  event="Sports\x00day"),
        form_case("NUL in purpose", field_name="purpose", code="invalid_text",
                  purpose="web\x00site"),
        form_case("invalid UTF-8 in event", field_name="event", code="invalid_text",
                  event=b"Sports \xff\xfe day"),
        form_case("invalid UTF-8 in purpose", field_name="purpose", code="invalid_text",
                  purpose=b"web\xc3site"),
        form_case("control character in event", field_name="event", code="invalid_text",
                  event="Sports\x1bday"),
        form_case("NUL in captured_on", field_name="captured_on", captured_on="2024-01-01\x00"),
        # ---- dates
        form_case("captured_on 9999-12-31", field_name="captured_on", code="implausible_date",
                  captured_on="9999-12-31"),
        form_case("captured_on 0001-01-01", field_name="captured_on", code="implausible_date",
                  captured_on="0001-01-01"),
        form_case("captured_on 3000-01-01", field_name="captured_on", code="implausible_date",
                  captured_on="3000-01-01"),
        form_case("captured_on 1989-12-31", field_name="captured_on", code="implausible_date",
                  captured_on="1989-12-31"),
        form_case("captured_on the day after tomorrow", field_name="captured_on",
                  code="implausible_date", captured_on=tomorrow_but_one),
        form_case("captured_on not a date", field_name="captured_on",
                  captured_on="last tuesday"),
        # ---- other endpoints
        Case("huge offset", method="GET", path=f"/api/v1/media?offset={10**30}",
             status=422, code="invalid_paging", field="offset"),
        Case("offset past the bound", method="GET", path="/api/v1/media?offset=1000001",
             status=422, code="invalid_paging", field="offset"),
        Case("offset not a number", method="GET", path="/api/v1/media?offset=lots",
             status=422, field="offset"),
        Case("NUL in a pupil's name", path="/api/v1/pupils", role="slt",
             json={"external_id": "P1", "given_name": "Ann\x00", "family_name": "Lee",
                   "year_group": "Y3"}, code="invalid_text", field="given_name"),
        Case("lone surrogate in a pupil's name", path="/api/v1/pupils", role="slt",
             content=b'{"external_id": "P2", "given_name": "Ann\\ud800", '
                     b'"family_name": "Lee", "year_group": "Y3"}',
             headers={"content-type": "application/json"}, field="given_name"),
        Case("NUL in a consent's evidence_ref", method="PUT",
             path="/api/v1/pupils/{pupil}/consents/website", role="slt",
             json={"status": "granted", "given_by": "guardian", "evidence_ref": "form\x00 12"},
             code="invalid_text", field="evidence_ref"),
        Case("NUL in a biometric consent's evidence_ref",
             path="/api/v1/pupils/{pupil}/biometric-consent", role="slt",
             json={"status": "granted", "by": "parent", "evidence_ref": "\x00"},
             code="invalid_text", field="evidence_ref"),
        Case("reference photo that is a text file",
             path="/api/v1/pupils/{pupil}/reference-photos", role="slt",
             files={"file": ("me.jpg", b"not a photo at all", "image/jpeg")},
             status=415, code="unsupported_media_type"),
        Case("empty reference photo", path="/api/v1/pupils/{pupil}/reference-photos",
             role="slt", files={"file": ("me.jpg", b"", "image/jpeg")}, status=(415, 422)),
        Case("invalid UTF-8 JSON body", path="/api/v1/pupils", role="slt",
             content=b'{"external_id": "P3", "given_name": "Ann\xff", "family_name": "Lee",'
                     b' "year_group": "Y3"}',
             headers={"content-type": "application/json"}, status=(400, 422)),
    ]
