"""Enrolment (a reference photo becomes a template) and erasure (every template and
reference photo of a pupil goes). Both change the gallery; the caller holds the gate
lock (services.core.uow), so no decision runs between the change and its consequences."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import cv2
import numpy as np
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import on_rollback
from models.orm import FaceTemplate, Pupil, ReferencePhoto, Role
from models.orm import MediaKind as MediaKindName
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.biometrics.gallery import engine_for
from services.biometrics.gallery import gallery as org_gallery
from services.biometrics.templates import encrypt_template
from services.core import intents, outbox
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    TooLarge,
    Undecodable,
    UnsupportedMediaType,
)
from services.core.jobs import RESCREEN_TASK, enqueue
from services.core.stores import build_store
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current
from storage.base import ObjectStore
from workers.engine.encode import crop_for_template
from workers.engine.errors import MediaRejected
from workers.engine.imaging import MediaKind, decode_image, sniff
from workers.engine.types import Encoding, EnrolmentRejected, RGBImage

_REJECTED: dict[str, type[InvalidInput]] = {
    "too_large": TooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "undecodable": Undecodable,
}


def compute_template(settings: Settings, data: bytes) -> Encoding:
    """The template of the one face in a reference photo (slow: call before any lock)."""
    try:
        if sniff(data[:64]).kind != MediaKind.IMAGE:
            raise InvalidInput("a reference photo must be a still image, not a video")
        rgb = decode_image(data, max_pixels=settings.max_image_pixels)
    except MediaRejected as exc:
        # The same status and code an upload of the file would get (413, 415 or 422).
        raise _REJECTED.get(exc.code, InvalidInput)(exc.message, reason_code=exc.code,
                                                    **exc.details) from exc
    try:
        return engine_for(settings).reference_template(rgb)
    except EnrolmentRejected as exc:
        raise InvalidInput(exc.reason, reason=exc.reason, reason_code=exc.code, gate=exc.code,
                           **exc.data) from exc


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
    intents.record(key, session=session)
    store.put(key, settings.template_fernet().encrypt(data))
    # Keep no child's photo without a row pointing at it.
    on_rollback(session, lambda: store.delete(key))
    intents.link(session, key)
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


# --- extra templates named by SLT ---------------------------------------------------

TEMPLATE_EDITORS = (Role.SLT, Role.ADMIN)


@dataclass(frozen=True)
class AddedTemplate:
    """What ``add_face_as_template`` made: a reference photo (the face's crop, encrypted
    like every reference photo) and its template, for ``pupil_id``."""

    pupil_id: uuid.UUID
    media_id: uuid.UUID
    face_id: uuid.UUID
    reference_photo_id: uuid.UUID
    # Distance of the new template to the pupil's nearest existing template.
    distance: float
    templates: int  # the pupil's templates now


def add_face_as_template(
    session: Session,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    face_id: uuid.UUID,
    pupil_id: uuid.UUID,
    *,
    store: ObjectStore | None = None,
) -> AddedTemplate:
    """SLT's "add this face as a template of this pupil" (issue 11).

    Refused (a core error with ``error_code`` and data, nothing written) unless: the caller
    is SLT or admin; medium, face and pupil are in the caller's organisation; the medium is
    a still photo; the face is not recognised as another pupil; the pupil is active, has
    current biometric consent (PoFA 2012 s.26), at least one template already and fewer than
    ``max_templates_per_pupil``; the face's crop passes the enrolment gate that reference
    photos pass (one face, size, score, sharpness, pose); and the new template is consistent
    with the pupil's own templates: the pupil is its nearest, within threshold + margin, and
    no other pupil comes within the margin of that. The last rule keeps a mistaken naming
    from teaching the gallery a stranger's face as this pupil's, which would let a
    stranger's photo pass under the pupil's consent.

    The crop is stored as a reference photo (so re-enrolment can recompute it and
    erasure deletes it with the others), its template is added, and the match epoch is
    bumped: every medium with faces screened before is stale until re-screened. The
    template is computed before the gate lock; consent is checked again under it.
    """
    principal.require(*TEMPLATE_EDITORS)
    media = MediaRepository(session).get(principal.org_id, media_id)
    if media is None:
        raise NotFound("no such medium in your organisation", media_id=str(media_id))
    face = next((f for f in media.faces if f.id == face_id), None)
    if face is None:
        raise NotFound("no such face in this medium", media_id=str(media_id),
                       face_id=str(face_id))
    pupils = PupilRepository(session)
    pupil = pupils.get(principal.org_id, pupil_id)
    if pupil is None:
        raise NotFound("no such pupil in your organisation", pupil_id=str(pupil_id))
    if media.kind != MediaKindName.IMAGE:
        raise InvalidInput("a template can only be taken from a still photo",
                           error_code="template_not_from_photo", media_id=str(media_id),
                           kind=media.kind)
    if face.pupil_id is not None and face.pupil_id != pupil.id:
        raise Conflict("this face is recognised as another pupil",
                       error_code="face_is_another_pupil", face_id=str(face_id))
    _check_template_allowed(session, settings, pupil)
    store = store if store is not None else build_store(settings)
    try:
        rgb = decode_image(store.get(media.original_key), max_pixels=settings.max_image_pixels)
    except MediaRejected as exc:
        raise InvalidInput(exc.message, error_code=exc.code) from exc
    crop = crop_for_template(rgb, (face.top, face.right, face.bottom, face.left))
    del rgb
    try:
        encoding = engine_for(settings).reference_template(crop)
    except EnrolmentRejected as exc:
        raise InvalidInput(exc.reason, error_code="template_refused", gate=exc.code,
                           face_id=str(face_id), **exc.data) from exc
    data = _png(crop)

    lock_for_change(session, principal.org_id)
    pupil = pupils.get(principal.org_id, pupil_id)
    if pupil is None:
        raise NotFound("no such pupil in your organisation", pupil_id=str(pupil_id))
    _check_template_allowed(session, settings, pupil)
    distance = _check_consistent(session, settings, pupil, encoding)
    photo = store_template(session, store, settings, principal, pupil, data, encoding)
    audit(session, principal, "template.added_from_face", f"pupil:{pupil.id}",
          {"media": str(media_id), "face": str(face_id), "reference_photo": str(photo.id),
           "distance": round(distance, 4)})
    enqueue(session, RESCREEN_TASK, str(pupil.org_id))
    return AddedTemplate(pupil.id, media_id, face_id, photo.id, distance,
                         pupils.template_count(pupil.id))


def _check_template_allowed(session: Session, settings: Settings, pupil: Pupil) -> None:
    repo = PupilRepository(session)
    if not pupil.active:
        raise Conflict("this pupil is marked as left; templates cannot be added",
                       error_code="pupil_left", pupil_id=str(pupil.id))
    if not biometric_is_current(repo.biometric_history(pupil.id)):
        raise Conflict("no current biometric consent for this pupil",
                       error_code="biometric_consent_not_current", pupil_id=str(pupil.id))
    count = repo.template_count(pupil.id)
    if count == 0:
        raise Conflict("this pupil has no enrolled reference photo; an extra template can "
                       "only add to an enrolment", error_code="no_reference_template",
                       pupil_id=str(pupil.id))
    if count >= settings.max_templates_per_pupil:
        raise Conflict("this pupil has as many templates as allowed",
                       error_code="template_limit", pupil_id=str(pupil.id),
                       templates=count, limit=settings.max_templates_per_pupil)


def _check_consistent(session: Session, settings: Settings, pupil: Pupil,
                      encoding: Encoding) -> float:
    """Distance to the pupil's nearest template, if the new template is clearly the
    pupil's (see add_face_as_template); else Conflict with the distances."""
    version = OrganisationRepository(session).gallery_version(pupil.org_id)
    current = org_gallery(session, settings, pupil.org_id, version)
    reach = settings.match_threshold + settings.match_margin
    ids = current.pupil_ids
    if str(pupil.id) not in ids:
        raise Conflict("this pupil has no template in the gallery",
                       error_code="no_reference_template", pupil_id=str(pupil.id))
    row = current.distances(np.asarray(encoding, dtype=np.float64)[None, :])[0]
    own = float(row[ids.index(str(pupil.id))])
    others = [float(d) for pid, d in zip(ids, row, strict=True) if pid != str(pupil.id)]
    nearest_other = min(others, default=float("inf"))
    if own > reach or nearest_other - own < settings.match_margin:
        raise Conflict(
            "this face is not clearly the same person as the pupil's own templates; it was "
            "not added", error_code="template_inconsistent", pupil_id=str(pupil.id),
            distance=round(own, 4), limit=round(reach, 4),
            nearest_other=None if nearest_other == float("inf") else round(nearest_other, 4))
    return own


def _png(rgb: RGBImage) -> bytes:
    """Lossless PNG of an RGB crop (pixels only, no metadata)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InvalidInput("the face could not be stored", error_code="template_refused")
    return bytes(buf)
