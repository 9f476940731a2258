"""API keys of the caller's organisation (admins): list and revoke."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from models.orm import ApiToken, Role
from services.api.deps import CurrentPrincipal, SessionDep
from services.core import tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["api keys"])


class TokenOut(BaseModel):
    id: uuid.UUID
    role: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    # "active", "expired" or "revoked".
    state: str


def token_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, role=t.role, name=t.name, created_at=t.created_at,
                    expires_at=t.expires_at, revoked_at=t.revoked_at, state=tokens.state(t))


@router.get("")
def list_tokens(session: SessionDep, principal: CurrentPrincipal) -> list[TokenOut]:
    principal.require(Role.ADMIN)
    return [token_out(t) for t in tokens.list_tokens(session, principal.org_id)]


@router.delete("/{token_id}")
def revoke_token(token_id: uuid.UUID, session: SessionDep,
                 principal: CurrentPrincipal) -> TokenOut:
    """Revoked at once: the key answers 401 from now on and its browser sessions end."""
    principal.require(Role.ADMIN)
    return token_out(tokens.revoke(session, principal, token_id, principal.org_id))
