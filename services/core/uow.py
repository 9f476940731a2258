"""The organisation's gate lock: the one lock under which every decision that lets a copy
out, and every change that can end one, runs (docs/safety.md).

* A change (consent, biometrics, a pupil's active flag, enrolment, erasure, screening
  results, review decisions, reject, purge, legal holds, takedowns) takes it
  **exclusively** by bumping the organisation's `consent_epoch`: on PostgreSQL that
  UPDATE holds the organisation's row lock until commit; on SQLite the write unit
  (`BEGIN IMMEDIATE`) already holds the database write lock from its first read.
* A publish takes it **shared** (`SELECT ... FOR SHARE`) right before it decides for the
  last time and inserts its row: changes wait for it and it waits for them; publishes
  of different media do not wait for each other.

Lock order: the gate lock first, then row locks of media, then the audit chain's head.
Taking the gate lock after an audit event was written in the same transaction is a
programming error (it could deadlock against a change doing the opposite) and raises.
After the lock is taken every loaded object is expired, so what the decision reads
next is what is committed now, not what was read before the wait.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.db import is_write_unit
from models.repositories.audit import AUDITED
from models.repositories.organisations import OrganisationRepository

GATE_HELD = "consentgate.gate_lock"
_EXCLUSIVE = "exclusive"
_SHARED = "shared"


class LockOrderError(RuntimeError):
    """A bug: locks taken in an order that can deadlock, or outside a write unit."""


def _held(session: Session) -> dict[uuid.UUID, str]:
    held: dict[uuid.UUID, str] = session.info.setdefault(GATE_HELD, {})
    return held


def lock_for_change(session: Session, org_id: uuid.UUID) -> int:
    """Take the gate lock exclusively (once per transaction); returns the new epoch."""
    held = _held(session)
    if held.get(org_id) == _EXCLUSIVE:
        return OrganisationRepository(session).epochs(org_id)[0]
    if held.get(org_id) == _SHARED:
        raise LockOrderError("a shared gate lock cannot be upgraded (two publishes doing so "
                             "would deadlock); take it exclusively from the start")
    _check(session, org_id)
    epoch = OrganisationRepository(session).bump_consent_epoch(org_id)
    held[org_id] = _EXCLUSIVE
    session.expire_all()
    return epoch


def lock_for_publish(session: Session, org_id: uuid.UUID) -> None:
    """Take the gate lock shared (once per transaction)."""
    held = _held(session)
    if org_id in held:
        return
    _check(session, org_id)
    OrganisationRepository(session).lock_shared(org_id)
    held[org_id] = _SHARED
    session.expire_all()


def holds_gate(session: Session, org_id: uuid.UUID) -> bool:
    return org_id in _held(session)


def _check(session: Session, org_id: uuid.UUID) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and not is_write_unit(session):
        raise LockOrderError("on SQLite the gate lock needs a write unit "
                             "(models.db.write_session), begun IMMEDIATE before any read")
    if session.info.get(AUDITED):
        raise LockOrderError("take the gate lock before writing audit events "
                             "(lock order: gate, media rows, audit head)")
    session.flush()
