"""Photography sessions: SLT or admins create them; staff list the ones they are on."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, status

from models.orm import PhotoSession
from services.api.consent_schemas import PersonOut, SessionIn, SessionOut
from services.api.deps import CurrentPrincipal, SessionDep
from services.core.policy import policy_of
from services.sessions import service as sessions

router = APIRouter(prefix="/api/v1/sessions", tags=["photography sessions"])


def session_out(found: PhotoSession, retention_days: int) -> SessionOut:
    return SessionOut(
        id=found.id, event=found.event, purpose=found.purpose, retention_days=retention_days,
        dates=[date.fromisoformat(d) for d in found.dates], staff=found.staff,
        devices=found.devices, created_by=found.creator_name, created_at=found.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_session(body: SessionIn, session: SessionDep,
                   principal: CurrentPrincipal) -> SessionOut:
    """An unknown purpose answers 422 with the policy's purposes as `allowed`."""
    created = sessions.create_session(session, principal, event=body.event,
                                      purpose=body.purpose, dates=body.dates,
                                      staff=body.staff, devices=body.devices)
    policy = policy_of(principal.org.policy)
    return session_out(created, policy.retention_for(created.purpose))


@router.get("")
def list_sessions(session: SessionDep, principal: CurrentPrincipal) -> list[SessionOut]:
    policy = policy_of(principal.org.policy)
    return [session_out(s, policy.retention_for(s.purpose))
            for s in sessions.visible_sessions(session, principal)]


@router.get("/people")
def people(session: SessionDep, principal: CurrentPrincipal) -> list[PersonOut]:
    """Who can be named as staff on a session (SLT or admin)."""
    return [PersonOut(id=p.id, name=p.name, role=p.role)
            for p in sessions.people(session, principal)]
