"""The one error hierarchy of ConsentGate.

Domain code, storage and the face engine raise these; `services.api.errors`
maps them to HTTP in one place, and the Celery tasks decide on retry by
`TransientError`. Nothing here knows about FastAPI.
"""

from __future__ import annotations

import re
from typing import Any


class ConsentGateError(Exception):
    """Base class. `code` is a stable machine-readable string for API clients."""

    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ConsentGateError):
    code = "not_found"


class Unauthenticated(ConsentGateError):
    code = "unauthenticated"


class Forbidden(ConsentGateError):
    code = "forbidden"


class Conflict(ConsentGateError):
    code = "conflict"


class InvalidInput(ConsentGateError):
    """Well-formed request whose content we cannot accept (HTTP 422)."""

    code = "invalid"


class TooLarge(InvalidInput):
    """Upload over the byte limit, or an image over the pixel limit (HTTP 413)."""

    code = "too_large"


class UnsupportedMediaType(InvalidInput):
    """Bytes that are not an image or video type we accept (HTTP 415)."""

    code = "unsupported_media_type"


class Undecodable(InvalidInput):
    """Right type by its magic bytes, but it does not decode (HTTP 422)."""

    code = "undecodable"


class Gone(ConsentGateError):
    code = "gone"


class TransientError(ConsentGateError):
    """A failure that may pass on retry: database or object store unreachable."""

    code = "unavailable"


class ObjectNotFound(NotFound):
    code = "object_not_found"


class StorageUnavailable(TransientError):
    code = "storage_unavailable"


# What `scrub` takes out of an error text meant for people: URLs, host:port pairs,
# IP addresses, and quoted object keys or paths. Those belong in the log.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_HOST_PORT = re.compile(r"\b(?:[a-z0-9-]+\.)*[a-z0-9-]+:\d{2,5}\b", re.IGNORECASE)
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_QUOTED_PATH = re.compile(r"""(['"])[^'"\s]*/[^'"\s]*\1""")
_CALL_ARGS = re.compile(r"\((?:host|url|bucket|key)=[^)]*\)", re.IGNORECASE)
_LABELLED = re.compile(r"\b(?:url|path|key|bucket|host|endpoint)\s*[:=]\s*\S+", re.IGNORECASE)
_PORT = re.compile(r"\bport\s+\d+", re.IGNORECASE)
_QUOTED_HOST = re.compile(r"""(['"])[a-z0-9-]+(?:\.[a-z0-9-]+)+\1""", re.IGNORECASE)


def scrub(text: str, *, limit: int = 500) -> str:
    """`text` without hosts, ports, URLs, buckets' object keys or paths, cut to `limit`
    characters: what may be shown to people (and stored in `media.error`)."""
    for pattern in (_CALL_ARGS, _URL, _LABELLED, _QUOTED_PATH, _QUOTED_HOST, _HOST_PORT,
                    _PORT, _IP):
        text = pattern.sub("[hidden]", text)
    return text[:limit]


class BucketMissing(StorageUnavailable):
    """The object store answers but the configured bucket does not exist (never created,
    or deleted): nothing can be stored until an administrator creates it (HTTP 503)."""

    code = "bucket_missing"
