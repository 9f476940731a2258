"""API key management: issue with an optional expiry, list, revoke.

A revoked or expired key fails authentication at once (services.core.auth reads the
row on every request) and the browser sessions made with it end in the same
transaction as the revocation. Every change is audited."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import ApiToken, Organisation, Role
from models.repositories.organisations import TokenRepository
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal, hash_token, issue_token
from services.core.errors import InvalidInput, NotFound

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def parse_duration(text: str) -> timedelta:
    """"90d", "12h", "2w" -> a timedelta; anything else is InvalidInput."""
    found = _DURATION.match(text or "")
    if found is None or int(found.group(1)) == 0:
        raise InvalidInput("an expiry is a whole number of hours, days or weeks, e.g. 90d, "
                           "12h or 2w", expires_in=text)
    return timedelta(hours=int(found.group(1)) * _UNIT_HOURS[found.group(2).lower()])


@dataclass(frozen=True)
class Issued:
    token: ApiToken
    secret: str


def create(session: Session, who: Principal | SystemActor, org: Organisation, role: Role,
           name: str, expires_in: timedelta | None = None) -> Issued:
    expires_at = utcnow() + expires_in if expires_in is not None else None
    secret = issue_token(session, org, role, name, expires_at)
    row = TokenRepository(session).get_by_hash(hash_token(secret))
    assert row is not None  # written just now, in this transaction
    audit(session, who, "token.created", f"token:{row.id}",
          {"role": role.value, "name": name, "expires_at": expires_at})
    return Issued(row, secret)


def list_tokens(session: Session, org_id: uuid.UUID) -> list[ApiToken]:
    return TokenRepository(session).list_for_org(org_id)


def state(token: ApiToken, now: datetime | None = None) -> str:
    """"active", "expired" or "revoked"."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def revoke(session: Session, who: Principal | SystemActor, token_id: uuid.UUID,
           org_id: uuid.UUID | None = None) -> ApiToken:
    """Revoke a key (of `org_id`, when given: an admin only reaches their own school's)."""
    repo = TokenRepository(session)
    token = repo.get(token_id)
    if token is None or (org_id is not None and token.org_id != org_id):
        raise NotFound("no such API key in your organisation", token_id=str(token_id))
    already = token.revoked_at is not None
    ended = repo.revoke(token_id, utcnow())
    token = repo.get(token_id) or token
    if not already:
        audit(session, who, "token.revoked", f"token:{token_id}",
              {"role": token.role, "name": token.name, "web_sessions_ended": ended})
    return token
