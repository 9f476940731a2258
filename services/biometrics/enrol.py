"""Enrolment (a reference photo becomes a template) and erasure (every template and
reference photo of a pupil goes). Both change the gallery; the caller holds the gate
lock (services.core.uow), so no decision runs between the change and its consequences."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import on_rollback
from models.orm import FaceTemplate, Pupil, ReferencePhoto
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.biometrics.gallery import engine_for
from services.biometrics.templates import encrypt_template
from services.core import outbox
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import InvalidInput, TooLarge, Undecodable, UnsupportedMediaType
from storage.base import ObjectStore
from workers.engine.errors import MediaRejected
from workers.engine.imaging import MediaKind, decode_image, sniff
from workers.engine.types import Encoding, EnrolmentRejected

_REJECTED: dict[str, type[InvalidInput]] = {
    "too_large": TooLarge, "unsupported_media_type": UnsupportedMediaType,
    "undecodable": Undecodable,
}


def compute_template(settings: Settings, data: bytes) -> Encoding:
    """The template of the one face in a reference photo (slow: call before any lock)."""
    try:
        if sniff(data[:64]).kind != MediaKind.IMAGE:
            raise InvalidInput("a reference photo must be a still image, not a video")
        rgb = decode_image(data, max_pixels=settings.max_image_pixels)
    except MediaRejected as exc:
        # The same status and code as an upload refused for the same reason (413/415/422).
        raise _REJECTED.get(exc.code, InvalidInput)(exc.message, **exc.details) from exc
    try:
        return engine_for(settings).reference_template(rgb)
    except EnrolmentRejected as exc:
        raise InvalidInput(exc.reason, reason=exc.reason) from exc


def store_template(session: Session, store: ObjectStore, settings: Settings,
                   principal: Principal, pupil: Pupil, data: bytes,
                   encoding: Encoding) -> ReferencePhoto:
    """Write the encrypted photo and template; the gallery gains a template, so every
    medium with faces screened before now is stale (bump of the match epoch)."""
    photo_id = uuid.uuid4()
    key = f"references/{pupil.org_id}/{pupil.id}/{photo_id}"
    photo = ReferencePhoto(
        id=photo_id, pupil_id=pupil.id, storage_key=key,
        sha256=hashlib.sha256(data).hexdigest(), created_by=principal.actor,
        created_at=utcnow(),
    )
    template = FaceTemplate(pupil_id=pupil.id, ciphertext=encrypt_template(settings, encoding),
                            created_at=utcnow())
    PupilRepository(session).add_reference(photo, template)
    store.put(key, settings.template_fernet().encrypt(data))
    # Keep no child's photo without a row pointing at it.
    on_rollback(session, lambda: store.delete(key))
    OrganisationRepository(session).bump_match_epoch(pupil.org_id)
    audit(session, principal, "reference_photo.added", f"pupil:{pupil.id}",
          {"reference_photo": str(photo_id)})
    return photo


def erase(session: Session, who: Principal | SystemActor, pupil: Pupil, *,
          reason: str) -> int:
    """Delete templates and reference-photo rows now, and every object version of the
    photos through the outbox (after commit, retried until it succeeds: a storage outage
    never keeps a withdrawn consent's data). Media the pupil is matched in, or a
    candidate in, must be looked at again. Returns how many templates went."""
    repo = PupilRepository(session)
    templates = repo.template_count(pupil.id)
    keys = repo.delete_biometrics(pupil.id)
    for key in keys:
        outbox.delete_object(session, key, org_id=pupil.org_id)
    OrganisationRepository(session).bump_gallery_version(pupil.org_id)
    MediaRepository(session).mark_needs_rescreen(pupil.org_id, pupil.id)
    if templates or keys:
        audit(session, who, "biometrics.erased", f"pupil:{pupil.id}",
              {"templates": templates, "reference_photos": len(keys), "reason": reason})
    return templates
