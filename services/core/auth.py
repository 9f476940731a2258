"""Bearer tokens: random, shown once, stored as sha256; roles decide what a caller may do."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Organisation, Role
from models.repositories.organisations import TokenRepository
from services.core.errors import Forbidden, Unauthenticated

TOKEN_PREFIX = "cg_"  # noqa: S105 - a marker that makes leaked tokens greppable


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: uuid.UUID
    org: Organisation
    role: Role
    name: str

    @property
    def org_id(self) -> uuid.UUID:
        return self.org.id

    @property
    def actor(self) -> str:
        """How this caller appears in the audit trail."""
        return f"{self.role.value}:{self.name}"

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"this needs one of the roles: {allowed}", role=self.role.value)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, org: Organisation, role: Role, name: str,
                expires_at: datetime | None = None) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    TokenRepository(session).create(org.id, role.value, name, hash_token(token), expires_at)
    return token


def authenticate(session: Session, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing bearer token")
    # Revoked or expired keys fail here, on every request: nothing caches a principal.
    row = TokenRepository(session).get_active_by_hash(hash_token(token), utcnow())
    if row is None:
        raise Unauthenticated("invalid, revoked or expired token")
    return Principal(token_id=row.id, org=row.organisation, role=Role(row.role), name=row.name)
