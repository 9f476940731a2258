"""Where a photo's own data ends, to find bytes that trail it.

A JPEG with a ZIP archive appended (a polyglot) decodes as an ordinary photo, and
stored as it came it would carry its payload into the archive and out again to
anyone who downloads the original. The container formats say where they end: JPEG
at its EOI marker, PNG after its IEND chunk, WebP at the length in its RIFF header,
HEIC after its last top-level box. Anything after that is not part of the image.
"""

from __future__ import annotations

_JPEG_STANDALONE = frozenset((0x01, *range(0xD0, 0xD8)))  # TEM, RST0..RST7


def jpeg_end(data: bytes) -> int | None:
    """Offset just past the EOI marker of the first image, or None if the marker
    structure is broken before it (the decoder then decides)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return None
        while i < n and data[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0xD9:
            return i
        if marker in _JPEG_STANDALONE:
            continue
        if i + 2 > n:
            return None
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2:
            return None
        i += length
        if marker == 0xDA:
            # Entropy-coded data runs to the next marker that is not a stuffed 0xFF00,
            # a restart marker or a fill byte.
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return None
                following = data[j + 1]
                if following == 0xFF:
                    i = j + 1
                elif following == 0x00 or following in _JPEG_STANDALONE:
                    i = j + 2
                else:
                    i = j
                    break
    return None


def png_end(data: bytes) -> int | None:
    """Offset just past the IEND chunk, or None if the chunks are broken before it."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    i, n = 8, len(data)
    while i + 8 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        i += 12 + length  # length, type, data, CRC
        if i > n:
            return None
        if kind == b"IEND":
            return i
    return None


def webp_end(data: bytes) -> int | None:
    """Offset past the RIFF chunk (padded to even length), or None if it is not RIFF."""
    if len(data) < 12 or data[:4] != b"RIFF":
        return None
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def isobmff_end(data: bytes) -> int | None:
    """Offset past the last well-formed top-level box (HEIC/HEIF)."""
    i, n = 0, len(data)
    while i + 8 <= n:
        size = int.from_bytes(data[i : i + 4], "big")
        header = 8
        if size == 1:
            if i + 16 > n:
                break
            size = int.from_bytes(data[i + 8 : i + 16], "big")
            header = 16
        elif size == 0:  # the box runs to the end of the file
            return n
        if size < header or i + size > n:
            break
        i += size
    return i or None


_END = {
    "image/jpeg": jpeg_end,
    "image/png": png_end,
    "image/webp": webp_end,
    "image/heic": isobmff_end,
    "image/heif": isobmff_end,
}


def trailing_bytes(data: bytes, mime: str) -> int | None:
    """How many bytes follow the image's own data; None when its structure cannot be
    followed to the end (treat as trailing: keep the original only when sure)."""
    find_end = _END.get(mime)
    if find_end is None:
        return None
    end = find_end(data)
    if end is None or end > len(data):
        return None
    return len(data) - end
