"""Queries for pending-object intents and for who owns an object key."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models.orm import Media, MediaStatus, PendingObject, Publication, ReferencePhoto

# Media whose files are gone for good: their row no longer owns any object.
_FILES_GONE = (MediaStatus.PURGED.value, MediaStatus.REJECTED.value)


class IntentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: str, created_at: datetime) -> None:
        # merge: a retried write of the same key refreshes its intent, never duplicates it.
        self.session.merge(PendingObject(key=key, created_at=created_at))
        self.session.flush()

    def clear(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self.session.execute(delete(PendingObject).where(PendingObject.key.in_(keys)))

    def older_than(self, cutoff: datetime, limit: int) -> list[PendingObject]:
        return list(self.session.scalars(
            select(PendingObject).where(PendingObject.created_at < cutoff)
            .order_by(PendingObject.created_at).limit(limit)
        ))

    def lock(self, key: str) -> PendingObject | None:
        return self.session.scalar(
            select(PendingObject).where(PendingObject.key == key).with_for_update()
            .execution_options(populate_existing=True)
        )

    def created_since(self, cutoff: datetime) -> set[str]:
        return set(self.session.scalars(
            select(PendingObject.key).where(PendingObject.created_at >= cutoff)))

    def owned(self, keys: Sequence[str]) -> set[str]:
        """Those of `keys` that a committed row owns: a live medium's original or derived
        file, a reference photo, a live publication's copy."""
        owned: set[str] = set()
        chunk = 500
        for i in range(0, len(keys), chunk):
            part = list(keys[i:i + chunk])
            owned.update(self.session.scalars(
                select(Media.original_key).where(Media.original_key.in_(part),
                                                 Media.status.not_in(_FILES_GONE))))
            owned.update(self.session.scalars(
                select(ReferencePhoto.storage_key).where(ReferencePhoto.storage_key.in_(part))))
            owned.update(self.session.scalars(
                select(Publication.public_key).where(Publication.public_key.in_(part),
                                                     Publication.withdrawn_at.is_(None))))
            derived: dict[uuid.UUID, list[str]] = {}
            for key in part:
                media_id = _derived_media_id(key)
                if media_id is not None:
                    derived.setdefault(media_id, []).append(key)
            if derived:
                live = set(self.session.scalars(
                    select(Media.id).where(Media.id.in_(list(derived)),
                                           Media.status.not_in(_FILES_GONE))))
                for media_id in live:
                    owned.update(derived[media_id])
        return owned


# "<folder>/<org id>/<media id>/..." (services/lifecycle/retention.py DERIVED_FOLDERS)
_DERIVED_FOLDERS = ("derivatives", "crops", "thumbnails")


def _derived_media_id(key: str) -> uuid.UUID | None:
    parts = key.split("/")
    if len(parts) < 4 or parts[0] not in _DERIVED_FOLDERS:
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None
