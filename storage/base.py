"""The object store interface shared by the filesystem and MinIO backends.

Keys are '/'-separated relative paths such as ``originals/<org>/<media>``.
Deletion is always complete: on a versioned bucket every version and delete
marker under the key goes, because a consent withdrawal or retention purge
that leaves an old version behind has not deleted anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes | BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> None:
        """Store bytes or a file object (read to EOF) under key, replacing any object."""

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise ObjectNotFound if absent."""

    def download(self, key: str, path: Path) -> None:
        """Write the object to a local file (for videos, which decoders read from disk)."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Delete every version of key; succeed if it is already absent."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version of every key under prefix; return versions removed."""

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Current (non-deleted) keys under prefix."""

    def list_version_keys(self, prefix: str) -> Iterator[str]:
        """Every key under prefix with any stored version or delete marker, current or
        not (on filesystem: the current keys), each once."""

    def count_versions(self, prefix: str) -> int:
        """Object versions and delete markers under prefix (1 per file on filesystem)."""
