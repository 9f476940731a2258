"""Photography sessions (Harewood: staff must "ensure that senior management is aware that
photography/image equipment is being used and for what purpose").

SLT create a session: an event, its dates, one of the policy's purposes, the staff allowed
and the devices allowed. An upload may name one; what it breaks (a date outside it, an
uploader not on it, a device it does not allow) becomes upload flags on the medium, which
block every channel until SLT decide. Where the policy requires sessions, an upload that
names none is matched to a session that covers it, or flagged as outside any session.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import ApiToken, Device, PhotoSession, Role
from models.repositories.sessions import PhotoSessionRepository
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.errors import InvalidInput
from services.core.policy import Policy, Purpose, policy_of
from services.gate import reasons as rc

# A session is an event, not a term: a school trip is a week at most.
MAX_DAYS = 31


def resolve_purpose(policy: Policy, text: str) -> Purpose:
    """The policy's purpose `text` names, case-insensitively; 422 listing the allowed ones
    otherwise."""
    found = policy.purpose(text)
    if found is None:
        raise InvalidInput(
            f"unknown purpose {text.strip()!r}: choose one of your policy's purposes",
            field="purpose", allowed=policy.purpose_names())
    return found


def create_session(
    session: Session,
    principal: Principal,
    *,
    event: str,
    purpose: str,
    dates: Sequence[date],
    staff: Sequence[uuid.UUID],
    devices: Sequence[Device],
) -> PhotoSession:
    principal.require(Role.SLT, Role.ADMIN)
    policy = policy_of(principal.org.policy)
    found = resolve_purpose(policy, purpose)
    if not event.strip():
        raise InvalidInput("say what the event is", field="event")
    days = sorted(set(dates))
    if not days:
        raise InvalidInput("give the date (or dates) of the session", field="dates")
    if len(days) > MAX_DAYS:
        raise InvalidInput(f"a session covers at most {MAX_DAYS} days", field="dates")
    if not devices:
        raise InvalidInput("allow at least one kind of device", field="devices")
    if Device.PERSONAL in devices and policy.personal_devices == "forbidden":
        raise InvalidInput("your policy forbids personal devices, so a session cannot "
                           "allow them", field="devices")
    repo = PhotoSessionRepository(session)
    people = {p.id for p in repo.people(principal.org_id)}
    chosen = list(dict.fromkeys(staff))
    if not chosen:
        raise InvalidInput("name at least one member of staff who will take the photos",
                           field="staff")
    strangers = [str(s) for s in chosen if s not in people]
    if strangers:
        raise InvalidInput("not members of staff of your organisation", field="staff",
                           unknown=strangers)
    created = repo.add(PhotoSession(
        org_id=principal.org_id, event=event.strip()[:200], purpose=found.name,
        dates=[d.isoformat() for d in days], staff=[str(s) for s in chosen],
        devices=sorted({d.value for d in devices}), created_by=principal.token_id,
        creator_name=principal.name, created_at=utcnow(),
    ))
    audit(session, principal, "session.created", f"session:{created.id}",
          {"event": created.event, "purpose": created.purpose, "dates": created.dates,
           "staff": created.staff, "devices": created.devices})
    return created


def visible_sessions(session: Session, principal: Principal) -> list[PhotoSession]:
    """SLT and admins see every session; staff only the ones they are on."""
    everything = PhotoSessionRepository(session).list_sessions(principal.org_id)
    if principal.role in (Role.SLT, Role.ADMIN):
        return everything
    principal.require(Role.STAFF)
    return [s for s in everything if str(principal.token_id) in s.staff]


@dataclass(frozen=True)
class SessionCheck:
    session: PhotoSession | None
    # Codes with data for Media.upload_flags; empty when the upload is within its session.
    flags: list[dict[str, Any]]


def check_upload(session: Session, principal: Principal, policy: Policy, *,
                 session_id: uuid.UUID | None, device: Device, taken_on: date,
                 purpose: Purpose) -> SessionCheck:
    """What an upload taken on `taken_on` with `device` by the caller for `purpose` breaks
    of the session it names (or, where the policy requires sessions, of any session: one
    covers it if it is on that day, for that purpose, with the caller and the device)."""
    repo = PhotoSessionRepository(session)
    if session_id is None:
        if not policy.photography_sessions_required:
            return SessionCheck(None, [])
        me = str(principal.token_id)
        covering = [s for s in repo.list_sessions(principal.org_id)
                    if taken_on.isoformat() in s.dates and me in s.staff
                    and device.value in s.devices and policy.purpose(s.purpose) == purpose]
        if covering:
            return SessionCheck(covering[0], [])
        return SessionCheck(None, [{"code": rc.OUTSIDE_SESSION,
                                    "captured_on": taken_on.isoformat(), "session_id": None}])
    found = repo.get(principal.org_id, session_id)
    if found is None:
        raise InvalidInput("no such photography session in your organisation",
                           field="session_id", session_id=str(session_id))
    flags: list[dict[str, Any]] = []
    sid = str(found.id)
    if taken_on.isoformat() not in found.dates:
        flags.append({"code": rc.OUTSIDE_SESSION, "captured_on": taken_on.isoformat(),
                      "session_id": sid})
    if str(principal.token_id) not in found.staff:
        flags.append({"code": rc.NOT_ON_SESSION, "session_id": sid})
    if device.value not in found.devices:
        flags.append({"code": rc.SESSION_DEVICE, "session_id": sid, "device": device.value})
    return SessionCheck(found, flags)


def people(session: Session, principal: Principal) -> list[ApiToken]:
    """Who SLT can name on a session: the organisation's unrevoked staff, SLT and admin
    keys (a key is a person here; its name is theirs)."""
    principal.require(Role.SLT, Role.ADMIN)
    return PhotoSessionRepository(session).people(principal.org_id)
