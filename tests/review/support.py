"""Helpers for review and redaction tests: a small register, a photo carrying every kind
of metadata, and checks on what a published file contains."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

from PIL import Image

from tests.flow import enrol_register
from tests.support import Http
from workers.engine.engine import EngineConfig, get_engine
from workers.engine.imaging import decode_image
from workers.engine.match import Gallery
from workers.engine.types import GalleryEntry, ScreenedFace

MAX_PIXELS = 100_000_000
# Metadata planted in the upload; none of it may reach a public copy.
CAMERA = "PlantedCam"
COMMENT = b"planted comment: Rose, Year 5"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
       b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
       b'exif:GPSLatitude="53,48.0N" exif:GPSLongitude="1,32.0W"/></rdf:RDF></x:xmpmeta>')
IPTC_CAPTION = b"planted IPTC caption"


def enrol(http: Http, slt: dict[str, str], faces: Path,
          register: dict[str, str | None]) -> dict[str, str]:
    """Pupils for shared/faces/enrol identities, with website consent granted or not."""
    return enrol_register(http, slt, faces, register)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def tagged_photo(path: Path) -> bytes:
    """The photo as a phone held sideways stores it: pixels turned a quarter anticlockwise
    with EXIF Orientation 6, plus camera and GPS EXIF, XMP, IPTC and a comment."""
    upright = Image.open(path).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = CAMERA
    exif[0x0110] = "Model 7"
    exif[0x8825] = {1: "N", 2: (53.0, 48.0, 0.0), 3: "W", 4: (1.0, 32.0, 0.0)}
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=95,
                                                        exif=exif.tobytes())
    data = buf.getvalue()
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(IPTC_CAPTION)) + IPTC_CAPTION
    photoshop = (b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc))
                 + iptc)
    extra = (_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP)
             + _segment(0xED, photoshop) + _segment(0xFE, COMMENT))
    tagged = data[:2] + extra + data[2:]
    check = Image.open(io.BytesIO(tagged))
    assert check.getexif().get_ifd(0x8825), "the GPS block was not written"
    return tagged


def jpeg_markers(data: bytes) -> list[int]:
    """Every marker before the image data starts (SOS)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    markers, i = [], 2
    while i < len(data):
        assert data[i] == 0xFF, f"bad marker at {i}"
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        i += 2 + length
    return markers


def assert_no_metadata(data: bytes) -> None:
    markers = jpeg_markers(data)
    # APP1 = EXIF or XMP, APP2 = ICC, APP13 = IPTC, COM = comment; only JFIF (APP0),
    # tables, frame and scan headers may remain.
    leaked = [hex(m) for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE]
    assert not leaked, f"metadata segments in the published file: {leaked}"
    im = Image.open(io.BytesIO(data))
    assert not im.getexif(), dict(im.getexif())
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "photoshop",
                "comment"} & set(im.info), im.info
    for planted in (b"Exif\x00\x00", b"ns.adobe.com", b"Photoshop 3.0", CAMERA.encode(),
                    COMMENT, IPTC_CAPTION):
        assert planted not in data, planted


def gallery(faces: Path, names: list[str]) -> Gallery:
    engine = get_engine(EngineConfig())
    entries = [
        GalleryEntry(name, engine.reference_template(decode_image(p.read_bytes(),
                                                                  max_pixels=MAX_PIXELS)))
        for name in names for p in sorted((faces / "enrol" / name).iterdir())
    ]
    return Gallery.from_entries(entries)


def screen(data: bytes, gal: Gallery) -> list[ScreenedFace]:
    """What the face engine finds in a file, with the settings the service uses."""
    from services.core.config import get_settings
    from services.screen.service import engine_for

    rgb = decode_image(data, max_pixels=MAX_PIXELS)
    return engine_for(get_settings()).screen_image(rgb, gal)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def audit_events(action: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from models.orm import AuditEvent
    from services.core import runtime

    with runtime.sessions()() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                               .order_by(AuditEvent.id))
        return [{"actor": r.actor, "target": r.target, **r.details} for r in rows]
