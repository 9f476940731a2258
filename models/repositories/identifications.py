"""SLT naming faces: the records, and the faces and pupils they touch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models.orm import DecisionState, FaceIdentification, Media, Pupil


class IdentificationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: FaceIdentification) -> FaceIdentification:
        self.session.add(record)
        self.session.flush()
        return record

    def get(self, org_id: uuid.UUID, record_id: uuid.UUID) -> FaceIdentification | None:
        return self.session.scalar(
            select(FaceIdentification).join(Media, Media.id == FaceIdentification.media_id)
            .where(FaceIdentification.id == record_id, Media.org_id == org_id)
        )

    def awaiting(self, media_ids: Sequence[uuid.UUID]) -> list[FaceIdentification]:
        if not media_ids:
            return []
        return list(self.session.scalars(
            select(FaceIdentification).where(
                FaceIdentification.media_id.in_(media_ids),
                FaceIdentification.state == DecisionState.AWAITING_SECOND.value,
            ).order_by(FaceIdentification.created_at)
        ))

    def search_pupils(self, org_id: uuid.UUID, text: str, *, limit: int = 20) -> list[Pupil]:
        """Pupils of the organisation whose name or reference contains the text (any case),
        current pupils first."""
        like = f"%{text.strip().lower()}%"
        query = select(Pupil).where(Pupil.org_id == org_id)
        if text.strip():
            query = query.where(or_(
                func.lower(Pupil.given_name + " " + Pupil.family_name).like(like),
                func.lower(Pupil.external_id).like(like),
            ))
        return list(self.session.scalars(
            query.order_by(Pupil.active.desc(), Pupil.family_name, Pupil.given_name)
            .limit(limit)
        ))

    def to_reapply(self, media_id: uuid.UUID) -> list[FaceIdentification]:
        """In-force namings of a medium that are still applied (not lost), oldest first:
        the ones a re-screen must carry over to the new face rows."""
        return list(self.session.scalars(
            select(FaceIdentification).where(
                FaceIdentification.media_id == media_id,
                FaceIdentification.state == DecisionState.IN_FORCE.value,
                FaceIdentification.lost_at.is_(None),
                FaceIdentification.superseded_by.is_(None),
            ).order_by(FaceIdentification.created_at, FaceIdentification.id)
        ))

    def lost(self, media_id: uuid.UUID) -> list[FaceIdentification]:
        """Namings of a medium a re-screen could not carry over and SLT have not named
        again: each is a reason for SLT to look."""
        return list(self.session.scalars(
            select(FaceIdentification).where(
                FaceIdentification.media_id == media_id,
                FaceIdentification.state == DecisionState.IN_FORCE.value,
                FaceIdentification.lost_at.is_not(None),
                FaceIdentification.superseded_by.is_(None),
            ).order_by(FaceIdentification.created_at, FaceIdentification.id)
        ))
