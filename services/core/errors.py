"""The one error hierarchy of ConsentGate.

Domain code, storage and the face engine raise these; `services.api.errors`
maps them to HTTP in one place, and the Celery tasks decide on retry by
`TransientError`. Nothing here knows about FastAPI.
"""

from __future__ import annotations

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


class BucketMissing(StorageUnavailable):
    """The object store answers but the configured bucket does not exist (never created,
    or deleted): nothing can be stored until an administrator creates it (HTTP 503)."""

    code = "bucket_missing"
