"""The organisation's gallery (templates of active pupils with biometric consent) and the
face engine configured from Settings. Shared by screening, redaction and enrolment."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.repositories.pupils import PupilRepository
from services.biometrics.templates import decrypt_template
from services.core.config import Settings
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.match import Gallery, GalleryCache
from workers.engine.types import GalleryEntry

_galleries = GalleryCache()


def engine_for(settings: Settings) -> FaceEngine:
    return get_engine(
        EngineConfig(
            threshold=settings.match_threshold,
            margin=settings.match_margin,
            detector_threads=settings.detector_threads,
            enrol_jitters=settings.enrol_jitters,
        )
    )


def _entries(session: Session, settings: Settings, org_id: uuid.UUID) -> list[GalleryEntry]:
    rows = PupilRepository(session).gallery_templates(org_id)
    return [GalleryEntry(str(pid), decrypt_template(settings, ct)) for pid, ct in rows]


def gallery(session: Session, settings: Settings, org_id: uuid.UUID, version: int) -> Gallery:
    """The gallery at `version` (the organisation's gallery_version), cached per process;
    any change to templates bumps the version, so a cached gallery is never stale."""
    return _galleries.get(str(org_id), version, lambda: _entries(session, settings, org_id))


def invalidate(org_id: uuid.UUID | None = None) -> None:
    _galleries.invalidate(None if org_id is None else str(org_id))
