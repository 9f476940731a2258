from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from models.orm import Approval, Face, Media, MediaKind, MediaStatus, Publication


def _faces_of(pupil_id: uuid.UUID) -> Select[Any]:
    # Candidates are a small JSON list of ids; a pupil's id (a UUID) appears in its text
    # only if the pupil is one of them, on every backend.
    return select(Face.media_id).where(
        or_(Face.pupil_id == pupil_id,
            cast(Face.candidates, String).contains(str(pupil_id)))
    )


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
            .execution_options(populate_existing=True)
        )

    def org_of(self, media_id: uuid.UUID) -> uuid.UUID | None:
        return self.session.scalar(select(Media.org_id).where(Media.id == media_id))

    def lock(self, org_id: uuid.UUID, media_id: uuid.UUID) -> Media | None:
        """Row-locked and re-read with its faces (after the gate lock: see core.uow)."""
        media = self.session.scalar(
            select(Media).where(Media.id == media_id, Media.org_id == org_id)
            .with_for_update().execution_options(populate_existing=True)
        )
        if media is not None:
            self.session.refresh(media, ["faces"])
        return media

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

    def get_many(self, org_id: uuid.UUID, media_ids: Sequence[uuid.UUID]) -> list[Media]:
        if not media_ids:
            return []
        return list(self.session.scalars(
            select(Media).where(Media.org_id == org_id, Media.id.in_(media_ids))))

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
        """Media with a face matched to the pupil or naming them as a candidate."""
        return list(
            self.session.scalars(
                select(Media)
                .options(selectinload(Media.faces))
                .where(Media.org_id == org_id, Media.id.in_(_faces_of(pupil_id)))
                .order_by(Media.created_at)
                .execution_options(populate_existing=True)
            )
        )

    def mark_needs_rescreen(self, org_id: uuid.UUID, pupil_id: uuid.UUID) -> list[uuid.UUID]:
        ids = list(self.session.scalars(
            select(Media.id).where(Media.org_id == org_id, Media.id.in_(_faces_of(pupil_id)))
        ))
        if ids:
            self.session.execute(update(Media).where(Media.id.in_(ids))
                                 .values(needs_rescreen=True))
            self.session.flush()
        return ids

    def stale(self, org_id: uuid.UUID, match_epoch: int, *, limit: int = 10_000
              ) -> list[uuid.UUID]:
        """Screened media with faces that are stale, in re-screen priority order: media
        with a live publication first, then those waiting for review, then the rest,
        oldest first within each."""
        has_faces = select(Face.media_id).distinct()
        live = select(Publication.media_id).where(Publication.withdrawn_at.is_(None))
        priority = case((Media.id.in_(live), 0),
                        (Media.status == MediaStatus.NEEDS_REVIEW, 1), else_=2)
        return list(self.session.scalars(
            select(Media.id)
            .where(
                Media.org_id == org_id,
                Media.status.in_([MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW]),
                or_(
                    and_(Media.kind == MediaKind.VIDEO, Media.frames_screened.is_(None)),
                    and_(Media.id.in_(has_faces),
                         or_(Media.needs_rescreen.is_(True), Media.screened_match_epoch.is_(None),
                             Media.screened_match_epoch < match_epoch)),
                ),
            )
            .order_by(priority, Media.created_at)
            .limit(limit)
        ))

    def count_screened_with_faces(self, org_id: uuid.UUID) -> int:
        return int(self.session.scalar(
            select(func.count()).select_from(Media).where(
                Media.org_id == org_id,
                Media.status.in_([MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW]),
                Media.id.in_(select(Face.media_id).distinct()))
        ) or 0)

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

    # --- Recovery (issue 12) ---

    def due_for_screening(self, queued_before: datetime, screening_before: datetime,
                          now: datetime) -> list[uuid.UUID]:
        """Media to send to screening again: queued too long (lost message) and not
        waiting out a transient error, queued whose retry time has come, or screening
        past the time limit (dead worker)."""
        return list(
            self.session.scalars(
                select(Media.id).where(
                    or_(
                        (Media.status == MediaStatus.QUEUED) & Media.retry_at.is_(None)
                        & (Media.status_changed_at < queued_before),
                        (Media.status == MediaStatus.QUEUED) & (Media.retry_at <= now),
                        (Media.status == MediaStatus.SCREENING)
                        & (Media.status_changed_at < screening_before),
                    )
                )
            )
        )

    def failed_with(self, codes: Sequence[str]) -> list[uuid.UUID]:
        return list(self.session.scalars(
            select(Media.id).where(Media.status == MediaStatus.FAILED,
                                   Media.failure_code.in_(list(codes)))))


class PublicationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, publication: Publication) -> Publication:
        self.session.add(publication)
        self.session.flush()
        return publication

    def get(self, publication_id: uuid.UUID) -> Publication | None:
        return self.session.scalar(
            select(Publication).where(Publication.id == publication_id)
            .execution_options(populate_existing=True)
        )

    def by_idempotency_key(self, media_id: uuid.UUID, key: str) -> Publication | None:
        return self.session.scalar(
            select(Publication).where(Publication.media_id == media_id,
                                      Publication.idempotency_key == key)
        )

    def active(self, media_id: uuid.UUID, channel: str) -> Publication | None:
        return self.session.scalar(
            select(Publication).where(
                Publication.media_id == media_id,
                Publication.channel == channel,
                Publication.withdrawn_at.is_(None),
            ).execution_options(populate_existing=True)
        )

    def active_all(self, media_id: uuid.UUID, channel: str) -> list[Publication]:
        """Every live copy on the channel (one, since the unique index; more only in data
        from before it)."""
        return list(self.session.scalars(
            select(Publication).where(
                Publication.media_id == media_id,
                Publication.channel == channel,
                Publication.withdrawn_at.is_(None),
            ).execution_options(populate_existing=True)
        ))

    def active_for_media(self, media_ids: Sequence[uuid.UUID]) -> list[Publication]:
        if not media_ids:
            return []
        return list(
            self.session.scalars(
                select(Publication).where(
                    Publication.media_id.in_(media_ids), Publication.withdrawn_at.is_(None)
                ).execution_options(populate_existing=True)
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
