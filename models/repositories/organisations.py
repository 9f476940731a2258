from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import ApiToken, Organisation, WebSession


class OrganisationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, slug: str, name: str, policy: dict[str, Any]) -> Organisation:
        org = Organisation(slug=slug, name=name, policy=policy, gallery_version=0)
        self.session.add(org)
        self.session.flush()
        return org

    def get(self, org_id: uuid.UUID) -> Organisation | None:
        return self.session.get(Organisation, org_id)

    def get_by_slug(self, slug: str) -> Organisation | None:
        return self.session.scalar(select(Organisation).where(Organisation.slug == slug))

    def list_all(self) -> list[Organisation]:
        return list(self.session.scalars(select(Organisation).order_by(Organisation.slug)))

    def bump_gallery_version(self, org_id: uuid.UUID) -> None:
        self.session.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(gallery_version=Organisation.gallery_version + 1)
        )

    def bump_match_epoch(self, org_id: uuid.UUID) -> None:
        self.session.execute(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(match_epoch=Organisation.match_epoch + 1,
                    gallery_version=Organisation.gallery_version + 1)
        )

    def bump_consent_epoch(self, org_id: uuid.UUID) -> int:
        """The exclusive gate lock: an UPDATE holds the organisation's row lock until commit
        (PostgreSQL); on SQLite the write unit already holds the database lock."""
        epoch = self.session.scalar(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(consent_epoch=Organisation.consent_epoch + 1)
            .returning(Organisation.consent_epoch)
        )
        return int(epoch or 0)

    def lock_shared(self, org_id: uuid.UUID) -> None:
        """The shared gate lock (a publish deciding): changes wait for it, other publishes
        do not."""
        self.session.execute(
            select(Organisation.id).where(Organisation.id == org_id).with_for_update(read=True)
        )

    def epochs(self, org_id: uuid.UUID) -> tuple[int, int]:
        """(consent_epoch, match_epoch), read fresh."""
        row = self.session.execute(
            select(Organisation.consent_epoch, Organisation.match_epoch)
            .where(Organisation.id == org_id)
        ).one_or_none()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def next_takedown_seq(self, org_id: uuid.UUID) -> int:
        seq = self.session.scalar(
            update(Organisation)
            .where(Organisation.id == org_id)
            .values(takedown_seq=Organisation.takedown_seq + 1)
            .returning(Organisation.takedown_seq)
        )
        return int(seq or 0)

    def gallery_version(self, org_id: uuid.UUID) -> int:
        version = self.session.scalar(
            select(Organisation.gallery_version).where(Organisation.id == org_id)
        )
        return int(version or 0)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, org_id: uuid.UUID, role: str, name: str, token_hash: str,
               expires_at: datetime | None = None) -> ApiToken:
        token = ApiToken(org_id=org_id, role=role, name=name, token_hash=token_hash,
                         expires_at=expires_at)
        self.session.add(token)
        self.session.flush()
        return token

    def get_active_by_hash(self, token_hash: str,
                           now: datetime | None = None) -> ApiToken | None:
        """The token if it is neither revoked nor expired at `now` (default: now)."""
        return self.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == token_hash,
                                   ApiToken.revoked_at.is_(None),
                                   usable_at(now or utcnow()))
        )

    def get(self, token_id: uuid.UUID) -> ApiToken | None:
        return self.session.get(ApiToken, token_id)

    def get_by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))

    def list_for_org(self, org_id: uuid.UUID) -> list[ApiToken]:
        return list(self.session.scalars(
            select(ApiToken).where(ApiToken.org_id == org_id).order_by(ApiToken.created_at)
        ))

    def revoke(self, token_id: uuid.UUID, now: datetime) -> int:
        """Mark the token revoked and end every browser session made with it; returns how
        many sessions ended. Revoking twice keeps the first time."""
        self.session.execute(
            update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        ended = self.session.execute(
            update(WebSession)
            .where(WebSession.token_id == token_id, WebSession.ended_at.is_(None))
            .values(ended_at=now)
        )
        self.session.flush()
        self.session.expire_all()
        return int(getattr(ended, "rowcount", 0) or 0)


def usable_at(now: datetime) -> Any:
    """SQL condition: the token has no expiry or expires after `now`."""
    return or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now)
