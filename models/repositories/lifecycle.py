"""Queries of the consent lifecycle: webhooks, takedowns, legal holds, retention purge and
subject access."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from models.orm import (
    Approval,
    DeliveryStatus,
    Face,
    LegalHold,
    Media,
    MediaStatus,
    MediaTombstone,
    Organisation,
    Publication,
    ReviewDecision,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def endpoint(self, org_id: uuid.UUID) -> WebhookEndpoint | None:
        return self.session.get(WebhookEndpoint, org_id)

    def set_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        merged = self.session.merge(endpoint)
        self.session.flush()
        return merged

    def remove_endpoint(self, org_id: uuid.UUID) -> bool:
        found = self.session.get(WebhookEndpoint, org_id)
        if found is None:
            return False
        self.session.delete(found)
        self.session.flush()
        return True

    def add_delivery(self, delivery: WebhookDelivery) -> WebhookDelivery:
        self.session.add(delivery)
        self.session.flush()
        return delivery

    def lock_delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """Row-locked (PostgreSQL) so two messages for one delivery do not interleave."""
        return self.session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )

    def add_attempt(self, attempt: WebhookAttempt) -> None:
        self.session.add(attempt)
        self.session.flush()

    def list_deliveries(
        self, org_id: uuid.UUID, *, status: str | None = None, limit: int = 200
    ) -> list[WebhookDelivery]:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.org_id == org_id)
            .order_by(WebhookDelivery.created_at.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        return list(self.session.scalars(query))

    def overdue(self, due_before: datetime) -> list[uuid.UUID]:
        """Pending deliveries whose next attempt is long past: their message was lost."""
        return list(
            self.session.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at < due_before,
                )
            )
        )


class TakedownRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def withdrawn_since(
        self, org_id: uuid.UUID, since: datetime | None, *, limit: int = 1000
    ) -> list[Publication]:
        query = (
            select(Publication)
            .join(Media, Media.id == Publication.media_id)
            .where(Media.org_id == org_id, Publication.withdrawn_at.is_not(None))
            .order_by(Publication.withdrawn_at, Publication.id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(Publication.withdrawn_at >= since)
        return list(self.session.scalars(query))

    def after_cursor(self, org_id: uuid.UUID, after: int, limit: int) -> list[Publication]:
        return list(self.session.scalars(
            select(Publication)
            .join(Media, Media.id == Publication.media_id)
            .where(Media.org_id == org_id, Publication.takedown_seq > after)
            .order_by(Publication.takedown_seq)
            .limit(limit)
        ))

    def live_media_ids(self, org_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(Publication.media_id)
                .join(Media, Media.id == Publication.media_id)
                .where(Media.org_id == org_id, Publication.withdrawn_at.is_(None))
                .distinct()
            )
        )

    def orgs_with_live_publications(self) -> list[Organisation]:
        return list(
            self.session.scalars(
                select(Organisation).where(
                    Organisation.id.in_(
                        select(Media.org_id)
                        .join(Publication, Publication.media_id == Media.id)
                        .where(Publication.withdrawn_at.is_(None))
                    )
                )
            )
        )

    def media_with_faces(self, media_ids: Sequence[uuid.UUID]) -> list[Media]:
        if not media_ids:
            return []
        # Re-read, not taken from the identity map: the caller may just have waited for
        # the gate lock while another transaction changed these rows.
        return list(
            self.session.scalars(
                select(Media).options(selectinload(Media.faces)).where(Media.id.in_(media_ids))
                .execution_options(populate_existing=True)
            )
        )

    def publications_of(self, media_ids: Sequence[uuid.UUID]) -> list[Publication]:
        """Every publication of these media, live and withdrawn, oldest first."""
        if not media_ids:
            return []
        return list(
            self.session.scalars(
                select(Publication)
                .where(Publication.media_id.in_(media_ids))
                .order_by(Publication.published_at)
            )
        )

    def media_org(self, media_id: uuid.UUID) -> uuid.UUID | None:
        return self.session.scalar(select(Media.org_id).where(Media.id == media_id))


class RetentionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def past_retention(self, today: date, *, held: bool) -> list[Media]:
        """Unpurged media whose retention ended before today, with or without a hold."""
        holds = select(LegalHold.media_id).where(LegalHold.released_at.is_(None))
        query = (
            select(Media)
            .where(Media.status != MediaStatus.PURGED, Media.retention_until < today)
            .order_by(Media.retention_until, Media.id)
        )
        query = query.where(Media.id.in_(holds) if held else Media.id.not_in(holds))
        return list(self.session.scalars(query))

    def lock_media(self, media_id: uuid.UUID) -> Media | None:
        """Row-locked (PostgreSQL) and re-read, so a purge and a hold see each other."""
        return self.session.scalar(
            select(Media).where(Media.id == media_id).with_for_update()
            .execution_options(populate_existing=True)
        )

    def active_hold(self, media_id: uuid.UUID) -> LegalHold | None:
        return self.session.scalar(
            select(LegalHold).where(LegalHold.media_id == media_id,
                                    LegalHold.released_at.is_(None))
        )

    def holds(self, media_id: uuid.UUID) -> list[LegalHold]:
        return list(
            self.session.scalars(
                select(LegalHold).where(LegalHold.media_id == media_id)
                .order_by(LegalHold.set_at)
            )
        )

    def add_hold(self, hold: LegalHold) -> LegalHold:
        self.session.add(hold)
        self.session.flush()
        return hold

    def tombstone(self, media_id: uuid.UUID) -> MediaTombstone | None:
        return self.session.get(MediaTombstone, media_id)

    def add_tombstone(self, tombstone: MediaTombstone) -> None:
        self.session.add(tombstone)
        self.session.flush()

    def publication_keys(self, media_id: uuid.UUID) -> list[str]:
        return list(
            self.session.scalars(
                select(Publication.public_key).where(Publication.media_id == media_id)
            )
        )

    def delete_faces_and_approvals(self, media: Media) -> None:
        """Face rows (boxes and pupil links), approvals and review decisions (free-text
        justifications that may name children) go with the pixels."""
        self.session.execute(delete(Face).where(Face.media_id == media.id))
        self.session.execute(delete(Approval).where(Approval.media_id == media.id))
        self.session.execute(delete(ReviewDecision).where(ReviewDecision.media_id == media.id))
        self.session.flush()
        self.session.expire(media, ["faces"])
