"""Screen one medium: load it, run the face engine, save the faces.

Three short transactions, so no database lock is held while the engine runs:
claim (queued -> screening), compute, save (screening -> screened/needs_review).
Screening is idempotent: a medium already decided is left alone, and a second
delivery of the same message finds nothing to do.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import Device, Face, MediaKind, MediaStatus
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.audit import SystemActor
from services.audit import record as audit
from services.config import Settings
from services.jobs import enqueue
from services.register.service import decrypt_template
from storage.base import ObjectStore
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.imaging import decode_image
from workers.engine.match import Gallery, GalleryCache
from workers.engine.types import GalleryEntry, ScreenedFace

log = logging.getLogger(__name__)

_galleries = GalleryCache()


def engine_for(settings: Settings) -> FaceEngine:
    return get_engine(
        EngineConfig(
            threshold=settings.match_threshold,
            margin=settings.match_margin,
            detector_threads=settings.detector_threads,
        )
    )


@dataclass(frozen=True)
class _Claim:
    org_id: uuid.UUID
    kind: str
    key: str
    device: str
    gallery_version: int


def _claim(sessions: sessionmaker[Session], media_id: uuid.UUID) -> _Claim | None:
    with transaction(sessions) as session:
        media = MediaRepository(session).get_for_screening(media_id)
        if media is None or media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            return None
        media.status = MediaStatus.SCREENING.value
        media.status_changed_at = utcnow()
        media.attempts += 1
        return _Claim(
            org_id=media.org_id,
            kind=media.kind,
            key=media.original_key,
            device=media.device,
            gallery_version=OrganisationRepository(session).gallery_version(media.org_id),
        )


def load_gallery(sessions: sessionmaker[Session], settings: Settings, org_id: uuid.UUID,
                 version: int) -> Gallery:
    def load() -> list[GalleryEntry]:
        with transaction(sessions) as session:
            rows = PupilRepository(session).gallery_templates(org_id)
        return [GalleryEntry(str(pid), decrypt_template(settings, ct)) for pid, ct in rows]

    return _galleries.get(str(org_id), version, load)


def screen(
    sessions: sessionmaker[Session], store: ObjectStore, settings: Settings, media_id: uuid.UUID
) -> str | None:
    """Screen the medium; return its new status, or None if there was nothing to do."""
    claim = _claim(sessions, media_id)
    if claim is None:
        return None
    gallery = load_gallery(sessions, settings, claim.org_id, claim.gallery_version)
    engine = engine_for(settings)
    if claim.kind == MediaKind.IMAGE:
        rgb = decode_image(store.get(claim.key), max_pixels=settings.max_image_pixels)
        found = engine.screen_image(rgb, gallery)
    else:
        with tempfile.TemporaryDirectory(prefix="cg-screen-") as tmp:
            path = Path(tmp) / "video"
            store.download(claim.key, path)
            found = engine.screen_video(path, gallery, sample_fps=settings.video_sample_fps)
    return _save(sessions, media_id, claim, found)


def _save(
    sessions: sessionmaker[Session], media_id: uuid.UUID, claim: _Claim,
    found: list[ScreenedFace],
) -> str | None:
    with transaction(sessions) as session:
        repo = MediaRepository(session)
        media = repo.get_for_screening(media_id)
        if media is None or media.status != MediaStatus.SCREENING:
            return None
        repo.replace_faces(
            media,
            [
                Face(
                    media_id=media.id,
                    frame=f.frame,
                    top=f.box[0], right=f.box[1], bottom=f.box[2], left=f.box[3],
                    pupil_id=uuid.UUID(f.pupil_id) if f.pupil_id else None,
                    distance=f.distance,
                    match_status=f.status,
                )
                for f in found
            ],
        )
        unresolved = sum(1 for f in found if f.status != "matched")
        flagged = unresolved > 0 or claim.device == Device.PERSONAL
        status = MediaStatus.NEEDS_REVIEW if flagged else MediaStatus.SCREENED
        media.status = status.value
        media.status_changed_at = media.screened_at = utcnow()
        media.error = None
        audit(
            session, SystemActor("screening", claim.org_id), "media.screened",
            f"media:{media_id}",
            {"status": status.value, "faces": len(found), "unresolved": unresolved},
        )
        return status.value


def mark_failed(sessions: sessionmaker[Session], media_id: uuid.UUID, error: str) -> None:
    """Fail closed: a medium whose screening failed is blocked and goes to SLT review."""
    with transaction(sessions) as session:
        media = MediaRepository(session).get_for_screening(media_id)
        if media is None or media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            return
        media.status = MediaStatus.FAILED.value
        media.error = error[:2000]
        media.status_changed_at = utcnow()
        audit(session, SystemActor("screening", media.org_id), "media.screening_failed",
              f"media:{media_id}", {"error": media.error})


def sweep_stuck(sessions: sessionmaker[Session], settings: Settings,
                now: datetime | None = None) -> int:
    """Re-enqueue media left queued or screening too long (lost message, killed worker)."""
    now = now or utcnow()
    # A medium still screening within its time limit is being worked on, not stuck.
    screening_cutoff = now - timedelta(seconds=settings.screening_time_limit_s + 120)
    with transaction(sessions) as session:
        repo = MediaRepository(session)
        stuck = repo.stuck(now - timedelta(seconds=settings.stuck_after_s), screening_cutoff)
        for media_id in stuck:
            media = repo.get_for_screening(media_id)
            if media is None:
                continue
            # Touch the row so the next sweep waits a full interval before re-sending.
            media.status_changed_at = utcnow()
            enqueue(session, "consentgate.screen_media", str(media_id))
    if stuck:
        log.warning("re-enqueued %d stuck media", len(stuck))
    return len(stuck)
