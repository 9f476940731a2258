"""Browser sign-in: a bearer token pasted once becomes a server-side session.

The cookie carries a random secret; the database keeps only its sha256, the
token it stands for, and the CSRF token every form post must carry. A session
ends at sign-out, after SESSION_HOURS, or as soon as its token is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Role, WebSession
from models.repositories.review import WebSessionRepository
from services.core.audit import record as audit
from services.core.auth import Principal, authenticate

# A school day with room to spare; the next day starts with a fresh sign-in.
SESSION_HOURS = 12


@dataclass(frozen=True)
class Signed:
    principal: Principal
    secret: str
    csrf: str


@dataclass(frozen=True)
class Current:
    principal: Principal
    session_hash: str
    csrf: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def sign_in(session: Session, token: str) -> Signed:
    """Raises Unauthenticated for an unknown or revoked token."""
    principal = authenticate(session, token.strip() or None)
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    WebSessionRepository(session).add(WebSession(
        id=_hash(secret), token_id=principal.token_id, csrf=csrf, created_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    ))
    audit(session, principal, "web.signed_in", f"token:{principal.token_id}", {})
    return Signed(principal, secret, csrf)


def current(session: Session, secret: str | None) -> Current | None:
    if not secret:
        return None
    found = WebSessionRepository(session).live(_hash(secret), utcnow())
    if found is None:
        return None
    web_session, token = found
    principal = Principal(token_id=token.id, org=token.organisation, role=Role(token.role),
                          name=token.name)
    return Current(principal, web_session.id, web_session.csrf)


def sign_out(session: Session, secret: str | None) -> None:
    if secret:
        WebSessionRepository(session).end(_hash(secret), utcnow())


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())


def leave_notice(session: Session, current: Current, path: str, title: str,
                 lines: list[str] | None = None) -> None:
    """A notice for the page at `path`, kept server-side so a reload still shows it."""
    WebSessionRepository(session).set_notice(
        current.session_hash, {"path": path, "title": title, "lines": list(lines or [])})


def notice_for(session: Session, current: Current, path: str) -> dict[str, Any] | None:
    notice = WebSessionRepository(session).notice(current.session_hash)
    return notice if notice is not None and notice.get("path") == path else None
