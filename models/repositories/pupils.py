from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
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

    # --- the register at scale (issue 10) ----------------------------------
    def search(
        self,
        org_id: uuid.UUID,
        *,
        q: str | None = None,
        year_group: str | None = None,
        reg_group: str | None = None,
        active: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Pupil], int]:
        """One page of the register in name order, and how many match in all. `q` matches
        the start of the UPN, or any part of a given or family name, case-insensitively."""
        where = [Pupil.org_id == org_id]
        if q:
            # LIKE wildcards typed into the search box are searched for as nothing.
            term = "".join(c for c in q.strip() if c not in "\\%_")
            like = f"%{term.lower()}%"
            where.append(or_(
                func.lower(Pupil.given_name).like(like),
                func.lower(Pupil.family_name).like(like),
                func.lower(Pupil.given_name + " " + Pupil.family_name).like(like),
                func.upper(Pupil.external_id).like(f"{term.upper()}%"),
            ))
        if year_group:
            where.append(Pupil.year_group == year_group)
        if reg_group:
            where.append(Pupil.reg_group == reg_group)
        if active is not None:
            where.append(Pupil.active.is_(active))
        total = int(self.session.scalar(select(func.count()).select_from(Pupil).where(*where))
                    or 0)
        rows = self.session.scalars(
            select(Pupil).where(*where)
            .order_by(Pupil.family_name, Pupil.given_name, Pupil.id)
            .limit(limit).offset(offset)
        )
        return list(rows), total

    def groups(self, org_id: uuid.UUID) -> tuple[list[str], list[str]]:
        """The organisation's year groups and registration groups, for filters."""
        years = self.session.scalars(
            select(Pupil.year_group).where(Pupil.org_id == org_id).distinct()
        )
        regs = self.session.scalars(
            select(Pupil.reg_group).where(Pupil.org_id == org_id, Pupil.reg_group.is_not(None))
            .distinct()
        )
        return sorted(years, key=_natural), sorted((r for r in regs if r), key=_natural)

    def by_external_id(self, org_id: uuid.UUID) -> dict[str, Pupil]:
        """Every pupil of the organisation keyed by external id (one query)."""
        return {p.external_id: p for p in self.session.scalars(
            select(Pupil).where(Pupil.org_id == org_id))}

    def insert_rows(self, model: type[Pupil] | type[PublicationConsent]
                    | type[BiometricConsent], rows: list[dict[str, Any]]) -> None:
        """Bulk INSERT (one executemany), bypassing the ORM unit of work: thousands of
        rows from an import. Every dict has the same keys; nothing is loaded back."""
        if rows:
            self.session.execute(insert(model), rows)

    def reference_hashes(self, pupil_ids: Iterable[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
        """(pupil id, sha256 of the photo) for every reference photo of these pupils."""
        ids = set(pupil_ids)
        if not ids:
            return set()
        rows = self.session.execute(
            select(ReferencePhoto.pupil_id, ReferencePhoto.sha256)
            .where(ReferencePhoto.pupil_id.in_(ids))
        )
        return {(r[0], r[1]) for r in rows}

    def template_counts(self, pupil_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        ids = set(pupil_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(FaceTemplate.pupil_id, func.count()).where(FaceTemplate.pupil_id.in_(ids))
            .group_by(FaceTemplate.pupil_id)
        )
        return {r[0]: int(r[1]) for r in rows}

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


def _natural(text: str) -> tuple[int, str]:
    """"Year 2" before "Year 10": sort by the first number in the text, then the text."""
    digits = "".join(c if c.isdigit() else " " for c in text).split()
    return (int(digits[0]) if digits else 1_000_000, text)
