"""Retention purge and legal holds.

A medium is kept until its `retention_until` date (from the organisation's
policy at upload) and purged on any later day unless a legal hold is active.
Purging takes its live publications down first (the pipeline is told), then
deletes every object version under its keys, deletes its face rows and
approvals, blanks the free-text fields of the row and keeps a tombstone.

Objects are deleted before the transaction commits: if the commit then fails,
the medium is still due and the next run finishes the job, which is the safe
direction. Purging twice is a no-op.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import LegalHold, Media, MediaStatus, MediaTombstone, Role
from models.repositories.lifecycle import RetentionRepository
from models.repositories.media import MediaRepository
from services.core import validate
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings, get_settings
from services.core.errors import Conflict, NotFound
from services.core.uow import lock_for_change
from services.gate.media import get_media, refuse_if_purged
from services.takedown import service as takedown
from storage.base import ObjectStore

log = logging.getLogger(__name__)

# Per-medium object folders besides the original and the published copies:
# "<folder>/<org id>/<media id>/...". Anything derived from a medium (redacted
# copies, thumbnails, face crops) must be stored under one of these so that
# purge finds it.
DERIVED_FOLDERS = ("derivatives", "crops", "thumbnails")


def media_prefixes(media: Media) -> list[str]:
    return [f"{folder}/{media.org_id}/{media.id}" for folder in DERIVED_FOLDERS]


@dataclass(frozen=True)
class PurgeCandidates:
    due: list[Media]
    held: list[Media]


def candidates(session: Session, today: date | None = None) -> PurgeCandidates:
    today = today or utcnow().date()
    repo = RetentionRepository(session)
    return PurgeCandidates(due=repo.past_retention(today, held=False),
                           held=repo.past_retention(today, held=True))


def purge_medium(
    session: Session, store: ObjectStore, settings: Settings, media_id: uuid.UUID, *,
    today: date | None = None,
) -> MediaTombstone | None:
    """Purge one medium if it is still due today; None if it is not (held, kept, gone)."""
    today = today or utcnow().date()
    repo = RetentionRepository(session)
    org_id = MediaRepository(session).org_of(media_id)
    if org_id is None:
        return None
    lock_for_change(session, org_id)
    media = repo.lock_media(media_id)
    if (media is None or media.status == MediaStatus.PURGED
            or media.retention_until >= today or repo.active_hold(media.id) is not None):
        return None
    who = SystemActor("retention", media.org_id)
    reason = f"retention period ended on {media.retention_until.isoformat()}"

    taken = takedown.take_down_all(session, settings, who, media, f"retention purge: {reason}")

    versions = 0
    for key in [media.original_key, *repo.publication_keys(media.id)]:
        versions += store.delete_prefix(key)
    for prefix in media_prefixes(media):
        versions += store.delete_prefix(prefix)
    repo.delete_faces_and_approvals(media)

    now = utcnow()
    tombstone = MediaTombstone(
        media_id=media.id,
        org_id=media.org_id,
        sha256=media.sha256,
        kind=media.kind,
        size_bytes=media.size_bytes,
        captured_on=media.captured_on,
        uploaded_at=media.created_at,
        retention_until=media.retention_until,
        purged_at=now,
        reason=reason,
        object_versions_deleted=versions,
    )
    repo.add_tombstone(tombstone)
    # Event and purpose are free text that may name children; the uploader is a person.
    media.event = ""
    media.purpose = ""
    media.uploader_name = ""
    media.camera_make = media.camera_model = None
    media.error = None
    media.status = MediaStatus.PURGED.value
    media.status_changed_at = now
    session.flush()
    audit(session, who, "media.purged", f"media:{media.id}",
          {"sha256": media.sha256, "reason": reason, "object_versions_deleted": versions,
           "publications_taken_down": taken})
    return tombstone


@dataclass
class PurgeRun:
    purged: int = 0
    # No longer due when its turn came (a hold was set, or another run got there first).
    skipped: int = 0
    # Raised an error; still due, so the next run tries again.
    failed: int = 0


def purge_each(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    media_ids: list[uuid.UUID],
    *,
    today: date | None = None,
    progress: Callable[[uuid.UUID], None] | None = None,
) -> PurgeRun:
    """Purge each medium in its own transaction; one failure does not stop the rest."""
    run = PurgeRun()
    for media_id in media_ids:
        try:
            with transaction(sessions) as session:
                tombstone = purge_medium(session, store, get_settings(), media_id, today=today)
            if tombstone is None:
                run.skipped += 1
            else:
                run.purged += 1
        except Exception:
            run.failed += 1
            log.exception("purging media %s failed; the next run retries it", media_id)
        if progress is not None:
            progress(media_id)
    return run


def purge_due(sessions: sessionmaker[Session], store: ObjectStore,
              *, today: date | None = None) -> int:
    with transaction(sessions) as session:
        due = [m.id for m in candidates(session, today).due]
    run = purge_each(sessions, store, due, today=today)
    if run.purged or run.failed:
        log.info("retention purge: %d purged, %d failed", run.purged, run.failed)
    return run.purged


# --- legal holds ---------------------------------------------------------------


def set_hold(session: Session, principal: Principal, media_id: uuid.UUID,
             reason: str) -> LegalHold:
    principal.require(Role.SLT, Role.ADMIN)
    validate.text(reason, field="reason", max_length=2000)
    media = get_media(session, principal, media_id)
    repo = RetentionRepository(session)
    # Same locks as purge_medium: a purge running now finishes first (and the hold
    # then meets a purged medium) or sees this hold.
    lock_for_change(session, media.org_id)
    media = repo.lock_media(media.id) or media
    refuse_if_purged(session, media)
    if repo.active_hold(media.id) is not None:
        raise Conflict("this medium is already on legal hold; release it first to change it")
    hold = repo.add_hold(
        LegalHold(org_id=media.org_id, media_id=media.id, reason=reason,
                  set_by=principal.actor, set_at=utcnow())
    )
    audit(session, principal, "legal_hold.set", f"media:{media.id}",
          {"hold": str(hold.id), "reason": reason})
    return hold


def release_hold(session: Session, principal: Principal, media_id: uuid.UUID,
                 reason: str | None) -> LegalHold:
    principal.require(Role.SLT, Role.ADMIN)
    if reason is not None:
        validate.text(reason, field="reason", max_length=2000)
    media = get_media(session, principal, media_id)
    lock_for_change(session, media.org_id)
    hold = RetentionRepository(session).active_hold(media.id)
    if hold is None:
        raise NotFound("this medium is not on legal hold")
    hold.released_by = principal.actor
    hold.released_at = utcnow()
    hold.release_reason = reason
    session.flush()
    audit(session, principal, "legal_hold.released", f"media:{media.id}",
          {"hold": str(hold.id), "reason": reason})
    return hold


def holds(session: Session, principal: Principal, media_id: uuid.UUID) -> list[LegalHold]:
    principal.require(Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    return RetentionRepository(session).holds(media.id)
