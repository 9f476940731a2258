from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.orm import (
    BiometricConsent,
    FaceTemplate,
    PublicationConsent,
    Pupil,
    ReferencePhoto,
)


class PupilRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- pupils -----------------------------------------------------------
    def add(self, pupil: Pupil) -> Pupil:
        self.session.add(pupil)
        self.session.flush()
        return pupil

    def get(self, org_id: uuid.UUID, pupil_id: uuid.UUID) -> Pupil | None:
        return self.session.scalar(
            select(Pupil).where(Pupil.id == pupil_id, Pupil.org_id == org_id)
        )

    def get_by_external_id(self, org_id: uuid.UUID, external_id: str) -> Pupil | None:
        return self.session.scalar(
            select(Pupil).where(Pupil.org_id == org_id, Pupil.external_id == external_id)
        )

    def list_pupils(self, org_id: uuid.UUID) -> list[Pupil]:
        return list(
            self.session.scalars(
                select(Pupil)
                .where(Pupil.org_id == org_id)
                .order_by(Pupil.family_name, Pupil.given_name)
            )
        )

    def get_many(self, pupil_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Pupil]:
        ids = set(pupil_ids)
        if not ids:
            return {}
        return {p.id: p for p in self.session.scalars(select(Pupil).where(Pupil.id.in_(ids)))}

    # --- biometric consent (append-only) ----------------------------------
    def add_biometric(self, record: BiometricConsent) -> None:
        self.session.add(record)
        self.session.flush()

    def biometric_history(self, pupil_id: uuid.UUID) -> list[BiometricConsent]:
        return list(
            self.session.scalars(
                select(BiometricConsent)
                .where(BiometricConsent.pupil_id == pupil_id)
                .order_by(BiometricConsent.id)
            )
        )

    def biometric_histories(
        self, pupil_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[BiometricConsent]]:
        """Each pupil's biometric history in insertion order; pupils with none map to []."""
        ids = set(pupil_ids)
        out: dict[uuid.UUID, list[BiometricConsent]] = {p: [] for p in ids}
        if not ids:
            return out
        for record in self.session.scalars(
            select(BiometricConsent).where(BiometricConsent.pupil_id.in_(ids))
            .order_by(BiometricConsent.id)
        ):
            out[record.pupil_id].append(record)
        return out

    def active_flags(self, pupil_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bool]:
        """Read fresh (not from the identity map): a leaver may have committed just now."""
        ids = set(pupil_ids)
        if not ids:
            return {}
        rows = self.session.execute(select(Pupil.id, Pupil.active).where(Pupil.id.in_(ids)))
        return {r[0]: bool(r[1]) for r in rows}

    # --- publication consent (append-only) --------------------------------
    def add_consent(self, record: PublicationConsent) -> None:
        self.session.add(record)
        self.session.flush()

    def consent_history(self, pupil_id: uuid.UUID) -> list[PublicationConsent]:
        return list(
            self.session.scalars(
                select(PublicationConsent)
                .where(PublicationConsent.pupil_id == pupil_id)
                .order_by(PublicationConsent.id)
            )
        )

    def latest_consents(
        self, pupil_ids: Iterable[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, str], PublicationConsent]:
        """The current record per (pupil, channel): the newest row of each history."""
        ids = set(pupil_ids)
        if not ids:
            return {}
        newest = (
            select(func.max(PublicationConsent.id))
            .where(PublicationConsent.pupil_id.in_(ids))
            .group_by(PublicationConsent.pupil_id, PublicationConsent.channel)
        )
        rows = self.session.scalars(
            select(PublicationConsent).where(PublicationConsent.id.in_(newest))
        )
        return {(r.pupil_id, r.channel): r for r in rows}

    def latest_consents_by_giver(
        self, pupil_ids: Iterable[uuid.UUID]
    ) -> dict[tuple[uuid.UUID, str, str], PublicationConsent]:
        """The newest record per (pupil, channel, given_by): a guardian's and the pupil's
        own consent are separate histories."""
        ids = set(pupil_ids)
        if not ids:
            return {}
        newest = (
            select(func.max(PublicationConsent.id))
            .where(PublicationConsent.pupil_id.in_(ids))
            .group_by(PublicationConsent.pupil_id, PublicationConsent.channel,
                      PublicationConsent.given_by)
        )
        rows = self.session.scalars(
            select(PublicationConsent).where(PublicationConsent.id.in_(newest))
        )
        return {(r.pupil_id, r.channel, r.given_by): r for r in rows}

    def pupils_with_consent_expiring(self) -> list[PublicationConsent]:
        newest = select(func.max(PublicationConsent.id)).group_by(
            PublicationConsent.pupil_id, PublicationConsent.channel
        )
        return list(
            self.session.scalars(
                select(PublicationConsent).where(
                    PublicationConsent.id.in_(newest), PublicationConsent.expires_on.is_not(None)
                )
            )
        )

    # --- reference photos and templates -----------------------------------
    def add_reference(self, photo: ReferencePhoto, template: FaceTemplate) -> None:
        self.session.add(photo)
        self.session.flush()
        template.reference_photo_id = photo.id
        self.session.add(template)
        self.session.flush()

    def references(self, pupil_id: uuid.UUID) -> list[ReferencePhoto]:
        return list(
            self.session.scalars(
                select(ReferencePhoto)
                .where(ReferencePhoto.pupil_id == pupil_id)
                .order_by(ReferencePhoto.created_at)
            )
        )

    def template_count(self, pupil_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(FaceTemplate).where(
                    FaceTemplate.pupil_id == pupil_id
                )
            )
            or 0
        )

    def newest_template_times(self, pupil_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, datetime]:
        """When each pupil's newest template was made; pupils with none are left out."""
        ids = set(pupil_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(FaceTemplate.pupil_id, func.max(FaceTemplate.created_at))
            .where(FaceTemplate.pupil_id.in_(ids))
            .group_by(FaceTemplate.pupil_id)
        )
        return {r[0]: r[1] for r in rows}

    def delete_biometrics(self, pupil_id: uuid.UUID) -> list[str]:
        """Delete every template and reference-photo row; return the photo object keys."""
        keys = list(
            self.session.scalars(
                select(ReferencePhoto.storage_key).where(ReferencePhoto.pupil_id == pupil_id)
            )
        )
        self.session.execute(delete(FaceTemplate).where(FaceTemplate.pupil_id == pupil_id))
        self.session.execute(delete(ReferencePhoto).where(ReferencePhoto.pupil_id == pupil_id))
        self.session.flush()
        return keys

    def gallery_templates(self, org_id: uuid.UUID) -> Sequence[tuple[uuid.UUID, bytes]]:
        """(pupil id, encrypted template) for the organisation's active pupils."""
        rows = self.session.execute(
            select(FaceTemplate.pupil_id, FaceTemplate.ciphertext)
            .join(Pupil, Pupil.id == FaceTemplate.pupil_id)
            .where(Pupil.org_id == org_id, Pupil.active.is_(True))
        )
        return [(r[0], r[1]) for r in rows]
