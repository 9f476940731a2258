"""Register operations. Services flush; the request or task wrapper commits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import on_rollback
from models.orm import (
    BiometricConsent,
    BiometricStatus,
    Channel,
    ConsentStatus,
    FaceTemplate,
    PublicationConsent,
    Pupil,
    ReferencePhoto,
)
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.audit import record as audit
from services.auth import Principal
from services.config import Settings
from services.errors import Conflict, InvalidInput, NotFound
from services.publish import service as publish
from services.register.consent import biometric_is_current, consent_in_force
from storage.base import ObjectStore
from workers.engine.imaging import MediaKind, decode_image, sniff
from workers.engine.types import EnrolmentRejected

ENCODING_DTYPE = np.dtype("<f8")


def get_pupil(session: Session, principal: Principal, pupil_id: uuid.UUID) -> Pupil:
    pupil = PupilRepository(session).get(principal.org_id, pupil_id)
    if pupil is None:
        raise NotFound("no such pupil in your organisation", pupil_id=str(pupil_id))
    return pupil


def create_pupil(
    session: Session,
    principal: Principal,
    *,
    external_id: str,
    given_name: str,
    family_name: str,
    year_group: str,
) -> Pupil:
    repo = PupilRepository(session)
    if repo.get_by_external_id(principal.org_id, external_id) is not None:
        raise Conflict("a pupil with this external id already exists", external_id=external_id)
    try:
        pupil = repo.add(
            Pupil(
                org_id=principal.org_id,
                external_id=external_id,
                given_name=given_name,
                family_name=family_name,
                year_group=year_group,
                active=True,
            )
        )
    except IntegrityError as exc:
        raise Conflict("a pupil with this external id already exists") from exc
    audit(session, principal, "pupil.created", f"pupil:{pupil.id}", {"year_group": year_group})
    return pupil


def set_active(session: Session, store: ObjectStore, principal: Principal,
               pupil: Pupil, active: bool) -> None:
    """A pupil who leaves is inactive; their templates go at once (media follow retention)."""
    pupil.active = active
    if not active:
        erase_biometrics(session, store, principal, pupil, reason="pupil left")
    audit(session, principal, "pupil.active_changed", f"pupil:{pupil.id}", {"active": active})
    session.flush()


@dataclass(frozen=True)
class BiometricOutcome:
    current: bool
    templates_deleted: int


def record_biometric(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    pupil: Pupil,
    *,
    status: BiometricStatus,
    by: str,
    evidence_ref: str,
) -> BiometricOutcome:
    repo = PupilRepository(session)
    repo.add_biometric(
        BiometricConsent(
            pupil_id=pupil.id,
            status=status.value,
            by=by,
            evidence_ref=evidence_ref,
            recorded_by=principal.actor,
            recorded_at=utcnow(),
        )
    )
    current = biometric_is_current(repo.biometric_history(pupil.id))
    audit(
        session, principal, "biometric_consent.recorded", f"pupil:{pupil.id}",
        {"status": status.value, "by": by, "evidence_ref": evidence_ref, "current": current},
    )
    deleted = 0
    if not current:
        deleted = erase_biometrics(session, store, principal, pupil, reason=f"biometric {status}")
    OrganisationRepository(session).bump_gallery_version(pupil.org_id)
    # Matches made under consent that has now ended no longer justify publication.
    publish.redecide_for_pupil(session, store, pupil, reason=f"biometric consent {status}")
    return BiometricOutcome(current=current, templates_deleted=deleted)


def erase_biometrics(
    session: Session, store: ObjectStore, principal: Principal, pupil: Pupil, *, reason: str
) -> int:
    """Delete templates and reference photos at once, every object version included.

    Objects go before the rows commit: if the commit then fails, the photos are
    still gone, which is the safe direction for biometric data of children.
    """
    repo = PupilRepository(session)
    templates = repo.template_count(pupil.id)
    keys = repo.delete_biometrics(pupil.id)
    for key in keys:
        store.delete(key)
    OrganisationRepository(session).bump_gallery_version(pupil.org_id)
    if templates or keys:
        audit(
            session, principal, "biometrics.erased", f"pupil:{pupil.id}",
            {"templates": templates, "reference_photos": len(keys), "reason": reason},
        )
    return templates


def set_publication_consent(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    pupil: Pupil,
    channel: Channel,
    *,
    status: ConsentStatus,
    given_by: str,
    evidence_ref: str,
    expires_on: date | None,
) -> PublicationConsent:
    record = PublicationConsent(
        pupil_id=pupil.id,
        channel=channel.value,
        status=status.value,
        given_by=given_by,
        evidence_ref=evidence_ref,
        recorded_by=principal.actor,
        recorded_at=utcnow(),
        expires_on=expires_on,
    )
    PupilRepository(session).add_consent(record)
    audit(
        session, principal, "consent.recorded", f"pupil:{pupil.id}",
        {"channel": channel.value, "status": status.value, "given_by": given_by,
         "evidence_ref": evidence_ref, "expires_on": expires_on},
    )
    if status == ConsentStatus.WITHDRAWN:
        publish.redecide_for_pupil(
            session, store, pupil, reason=f"{channel.value} consent withdrawn"
        )
    elif not consent_in_force(record, utcnow().date()):
        # A grant recorded with an expiry date already past ends consent just the same.
        publish.redecide_for_pupil(
            session, store, pupil, reason=f"{channel.value} consent expired on {expires_on}"
        )
    return record


def add_reference_photo(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    data: bytes,
) -> ReferencePhoto:
    from workers.screen.service import engine_for  # dlib models load on first use

    repo = PupilRepository(session)
    if not biometric_is_current(repo.biometric_history(pupil.id)):
        raise Conflict(
            "no current biometric consent for this pupil: a parent's written consent is "
            "needed before a reference photo can be enrolled, and it must not have been "
            "withdrawn or objected to"
        )
    if not pupil.active:
        raise Conflict("this pupil is marked as left; reference photos cannot be added")
    if sniff(data[:64]).kind != MediaKind.IMAGE:
        raise InvalidInput("a reference photo must be a still image, not a video")
    rgb = decode_image(data, max_pixels=settings.max_image_pixels)
    try:
        encoding = engine_for(settings).reference_template(rgb)
    except EnrolmentRejected as exc:
        raise InvalidInput(exc.reason, reason=exc.reason) from exc

    fernet = settings.template_fernet()
    photo_id = uuid.uuid4()
    key = f"references/{pupil.org_id}/{pupil.id}/{photo_id}"
    photo = ReferencePhoto(
        id=photo_id,
        pupil_id=pupil.id,
        storage_key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        created_by=principal.actor,
        created_at=utcnow(),
    )
    template = FaceTemplate(
        pupil_id=pupil.id,
        ciphertext=fernet.encrypt(np.asarray(encoding, dtype=ENCODING_DTYPE).tobytes()),
        created_at=utcnow(),
    )
    repo.add_reference(photo, template)
    store.put(key, fernet.encrypt(data))
    # Keep no child's photo without a row pointing at it.
    on_rollback(session, lambda: store.delete(key))
    OrganisationRepository(session).bump_gallery_version(pupil.org_id)
    audit(session, principal, "reference_photo.added", f"pupil:{pupil.id}",
          {"reference_photo": str(photo_id)})
    return photo


def decrypt_template(settings: Settings, ciphertext: bytes) -> np.ndarray:
    raw = settings.template_fernet().decrypt(ciphertext)
    return np.frombuffer(raw, dtype=ENCODING_DTYPE).copy()
