"""Reaching a medium: access rules, and what a purged one answers with (410 Gone and its
tombstone)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from models.orm import Media, MediaStatus, MediaTombstone, Role
from models.repositories.lifecycle import RetentionRepository
from models.repositories.media import MediaRepository
from services.core.auth import Principal
from services.core.errors import Gone, NotFound


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


def get_media(session: Session, principal: Principal, media_id: uuid.UUID) -> Media:
    """The one way a request reaches a medium: in the caller's organisation, staff only
    their own uploads, and a purged medium answers 410 with its tombstone."""
    media = MediaRepository(session).get(principal.org_id, media_id)
    if media is None:
        raise NotFound("no such media in your organisation", media_id=str(media_id))
    if principal.role == Role.STAFF and media.uploaded_by != principal.token_id:
        # Staff see only their own uploads; say "not found" rather than leak existence.
        raise NotFound("no such media in your organisation", media_id=str(media_id))
    refuse_if_purged(session, media)
    return media
