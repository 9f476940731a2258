"""What a purged medium answers with: 410 Gone and its tombstone."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models.orm import Media, MediaStatus, MediaTombstone
from models.repositories.lifecycle import RetentionRepository
from services.errors import Gone


def tombstone_body(tombstone: MediaTombstone) -> dict[str, Any]:
    """JSON-ready; ids, digest, dates and the reason only."""
    return {
        "media_id": str(tombstone.media_id),
        "sha256": tombstone.sha256,
        "kind": tombstone.kind,
        "size_bytes": tombstone.size_bytes,
        "captured_on": tombstone.captured_on.isoformat() if tombstone.captured_on else None,
        "uploaded_at": tombstone.uploaded_at.isoformat(),
        "retention_until": tombstone.retention_until.isoformat(),
        "purged_at": tombstone.purged_at.isoformat(),
        "reason": tombstone.reason,
    }


def refuse_if_purged(session: Session, media: Media) -> None:
    if media.status != MediaStatus.PURGED:
        return
    tombstone = RetentionRepository(session).tombstone(media.id)
    raise Gone(
        "this medium has been deleted; only its tombstone remains",
        tombstone=tombstone_body(tombstone) if tombstone is not None else None,
    )
