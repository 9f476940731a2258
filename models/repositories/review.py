from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.orm import (
    ApiToken,
    DecisionKind,
    DecisionState,
    Face,
    Media,
    ReferencePhoto,
    ReviewDecision,
    WebSession,
)
from models.repositories.organisations import usable_at


class ReviewRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, decision: ReviewDecision) -> ReviewDecision:
        self.session.add(decision)
        self.session.flush()
        return decision

    def get(self, org_id: uuid.UUID, decision_id: uuid.UUID) -> ReviewDecision | None:
        return self.session.scalar(
            select(ReviewDecision)
            .join(Media, Media.id == ReviewDecision.media_id)
            .where(ReviewDecision.id == decision_id, Media.org_id == org_id)
            .with_for_update(of=ReviewDecision)
        )

    def for_media(self, media_id: uuid.UUID) -> list[ReviewDecision]:
        return list(
            self.session.scalars(
                select(ReviewDecision)
                .where(ReviewDecision.media_id == media_id)
                .order_by(ReviewDecision.created_at)
            )
        )

    def in_force(self, media_ids: Sequence[uuid.UUID]) -> list[ReviewDecision]:
        if not media_ids:
            return []
        return list(
            self.session.scalars(
                select(ReviewDecision).where(
                    ReviewDecision.media_id.in_(media_ids),
                    ReviewDecision.state == DecisionState.IN_FORCE,
                )
            )
        )

    def decided(self, media_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Media with any decision recorded, whatever its state."""
        if not media_ids:
            return set()
        return set(
            self.session.scalars(
                select(ReviewDecision.media_id)
                .where(ReviewDecision.media_id.in_(media_ids))
                .distinct()
            )
        )

    def awaiting(self, media_ids: Sequence[uuid.UUID]) -> list[ReviewDecision]:
        if not media_ids:
            return []
        return list(
            self.session.scalars(
                select(ReviewDecision)
                .where(
                    ReviewDecision.media_id.in_(media_ids),
                    ReviewDecision.state == DecisionState.AWAITING_SECOND,
                )
                .order_by(ReviewDecision.created_at)
            )
        )

    def decline_awaiting(self, media_id: uuid.UUID, note: str, at: datetime) -> None:
        """A rejected medium leaves no request waiting for a second SLT member."""
        self.session.execute(
            update(ReviewDecision)
            .where(
                ReviewDecision.media_id == media_id,
                ReviewDecision.state == DecisionState.AWAITING_SECOND,
                ReviewDecision.kind != DecisionKind.REJECT,
            )
            .values(state=DecisionState.DECLINED.value, second_note=note, second_at=at)
        )
        self.session.flush()

    def faces(self, media_id: uuid.UUID, face_ids: Sequence[uuid.UUID]) -> list[Face]:
        if not face_ids:
            return []
        return list(
            self.session.scalars(
                select(Face).where(Face.media_id == media_id, Face.id.in_(face_ids))
            )
        )

    def faces_in_tracks(self, media_id: uuid.UUID, tracks: Iterable[int]) -> list[Face]:
        wanted = set(tracks)
        if not wanted:
            return []
        return list(self.session.scalars(
            select(Face).where(Face.media_id == media_id, Face.track.in_(wanted))
            .order_by(Face.frame)
        ))

    def reference_photo(self, pupil_id: uuid.UUID, photo_id: uuid.UUID) -> ReferencePhoto | None:
        return self.session.scalar(
            select(ReferencePhoto).where(
                ReferencePhoto.id == photo_id, ReferencePhoto.pupil_id == pupil_id
            )
        )


class WebSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, web_session: WebSession) -> WebSession:
        self.session.add(web_session)
        self.session.flush()
        return web_session

    def live(self, session_hash: str, now: datetime) -> tuple[WebSession, ApiToken] | None:
        """The session and its token, if neither has ended, expired or been revoked."""
        row = self.session.execute(
            select(WebSession, ApiToken)
            .join(ApiToken, ApiToken.id == WebSession.token_id)
            .where(
                WebSession.id == session_hash,
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
                ApiToken.revoked_at.is_(None),
                usable_at(now),
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def end(self, session_hash: str, now: datetime) -> None:
        self.session.execute(
            update(WebSession)
            .where(WebSession.id == session_hash, WebSession.ended_at.is_(None))
            .values(ended_at=now)
        )
        self.session.flush()

    def set_notice(self, session_hash: str, notice: dict[str, Any] | None) -> None:
        self.session.execute(
            update(WebSession).where(WebSession.id == session_hash).values(notice=notice)
        )
        self.session.flush()

    def notice(self, session_hash: str) -> dict[str, Any] | None:
        value = self.session.scalar(
            select(WebSession.notice).where(WebSession.id == session_hash))
        return value if isinstance(value, dict) else None
