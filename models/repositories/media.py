from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, selectinload

from models.orm import Approval, Face, Media, MediaStatus, Publication


class MediaRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, media: Media) -> Media:
        self.session.add(media)
        self.session.flush()
        return media

    def get(self, org_id: uuid.UUID, media_id: uuid.UUID) -> Media | None:
        return self.session.scalar(
            select(Media)
            .options(selectinload(Media.faces))
            .where(Media.id == media_id, Media.org_id == org_id)
        )

    def get_for_screening(self, media_id: uuid.UUID) -> Media | None:
        """Lock the row (PostgreSQL) so two deliveries of one task cannot screen at once."""
        return self.session.scalar(
            select(Media).where(Media.id == media_id).with_for_update()
        )

    def list_media(
        self,
        org_id: uuid.UUID,
        *,
        uploaded_by: uuid.UUID | None = None,
        statuses: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Media]:
        query = (
            select(Media)
            .options(selectinload(Media.faces))
            .where(Media.org_id == org_id)
            .order_by(Media.created_at.desc())
            .limit(limit)
            .offset(offset)
        )
        if uploaded_by is not None:
            query = query.where(Media.uploaded_by == uploaded_by)
        if statuses:
            query = query.where(Media.status.in_(statuses))
        return list(self.session.scalars(query))

    def stuck(self, queued_before: datetime, screening_before: datetime) -> list[uuid.UUID]:
        """Media left queued (lost message) or screening (dead worker) too long."""
        return list(
            self.session.scalars(
                select(Media.id).where(
                    or_(
                        (Media.status == MediaStatus.QUEUED)
                        & (Media.status_changed_at < queued_before),
                        (Media.status == MediaStatus.SCREENING)
                        & (Media.status_changed_at < screening_before),
                    )
                )
            )
        )

    def replace_faces(self, media: Media, faces: Sequence[Face]) -> None:
        self.session.execute(delete(Face).where(Face.media_id == media.id))
        self.session.flush()
        self.session.expire(media, ["faces"])
        self.session.add_all(faces)
        self.session.flush()

    def media_matching_pupil(self, org_id: uuid.UUID, pupil_id: uuid.UUID) -> list[Media]:
        return list(
            self.session.scalars(
                select(Media)
                .options(selectinload(Media.faces))
                .where(
                    Media.org_id == org_id,
                    Media.id.in_(select(Face.media_id).where(Face.pupil_id == pupil_id)),
                )
                .order_by(Media.created_at)
            )
        )

    # --- approvals ---------------------------------------------------------
    def add_approval(self, approval: Approval) -> None:
        self.session.add(approval)
        self.session.flush()

    def approvals(self, media_id: uuid.UUID) -> list[Approval]:
        return list(
            self.session.scalars(
                select(Approval).where(Approval.media_id == media_id).order_by(Approval.created_at)
            )
        )

    def approved_channels(self, media_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        result: dict[uuid.UUID, set[str]] = {}
        if not media_ids:
            return result
        rows = self.session.execute(
            select(Approval.media_id, Approval.channel).where(Approval.media_id.in_(media_ids))
        )
        for media_id, channel in rows:
            result.setdefault(media_id, set()).add(channel)
        return result


class PublicationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, publication: Publication) -> Publication:
        self.session.add(publication)
        self.session.flush()
        return publication

    def get(self, publication_id: uuid.UUID) -> Publication | None:
        return self.session.get(Publication, publication_id)

    def active(self, media_id: uuid.UUID, channel: str) -> Publication | None:
        return self.session.scalar(
            select(Publication).where(
                Publication.media_id == media_id,
                Publication.channel == channel,
                Publication.withdrawn_at.is_(None),
            )
        )

    def active_for_media(self, media_ids: Sequence[uuid.UUID]) -> list[Publication]:
        if not media_ids:
            return []
        return list(
            self.session.scalars(
                select(Publication).where(
                    Publication.media_id.in_(media_ids), Publication.withdrawn_at.is_(None)
                )
            )
        )

    def list_publications(
        self, org_id: uuid.UUID, *, channel: str | None = None, include_withdrawn: bool = False
    ) -> list[Publication]:
        query = (
            select(Publication)
            .join(Media, Media.id == Publication.media_id)
            .where(Media.org_id == org_id)
            .order_by(Publication.published_at.desc())
        )
        if channel is not None:
            query = query.where(Publication.channel == channel)
        if not include_withdrawn:
            query = query.where(Publication.withdrawn_at.is_(None))
        return list(self.session.scalars(query))
