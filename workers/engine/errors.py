"""The face engine's own errors: media it refuses to read.

The engine imports nothing from ``services``; the API maps these to HTTP (413, 415 and
422) on its side. ``code`` is a stable machine-readable string, the same as the
service's error codes for the same conditions; ``message`` is shown to the user and
``details`` are safe to log (sizes, types, decoder messages; never pixels).
"""

from __future__ import annotations

from typing import Any


class MediaRejected(Exception):
    """Base class: the upload cannot be read as media we accept."""

    code: str = "media_rejected"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class MediaTooLarge(MediaRejected):
    """Over the pixel limit, checked from the header before decoding (HTTP 413)."""

    code = "too_large"


class UnsupportedMedia(MediaRejected):
    """Bytes that are not an image or video type we accept (HTTP 415)."""

    code = "unsupported_media_type"


class UndecodableMedia(MediaRejected):
    """Right type by its magic bytes, but it does not decode (HTTP 422)."""

    code = "undecodable"
