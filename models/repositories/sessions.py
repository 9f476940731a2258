"""Photography sessions, and the people who may be named on one."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import ApiToken, PhotoSession


class PhotoSessionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, photo_session: PhotoSession) -> PhotoSession:
        self.session.add(photo_session)
        self.session.flush()
        return photo_session

    def get(self, org_id: uuid.UUID, session_id: uuid.UUID) -> PhotoSession | None:
        return self.session.scalar(
            select(PhotoSession).where(PhotoSession.id == session_id,
                                       PhotoSession.org_id == org_id)
        )

    def list_sessions(self, org_id: uuid.UUID) -> list[PhotoSession]:
        """Newest first. Staff lists are JSON, so "the ones I am on" is filtered by the
        service; an organisation has tens of sessions a year, not thousands."""
        return list(self.session.scalars(
            select(PhotoSession).where(PhotoSession.org_id == org_id)
            .order_by(PhotoSession.created_at.desc(), PhotoSession.id)
        ))

    def people(self, org_id: uuid.UUID) -> list[ApiToken]:
        """Everyone in the organisation who can upload and is not revoked, by name."""
        return list(self.session.scalars(
            select(ApiToken).where(ApiToken.org_id == org_id, ApiToken.revoked_at.is_(None),
                                   ApiToken.role.in_(("staff", "slt", "admin")))
            .order_by(ApiToken.name, ApiToken.id)
        ))
