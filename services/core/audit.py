"""The audit trail: who did what to which record, hash-chained so tampering shows.

Details must never carry face encodings, pixels or image bytes; callers pass
ids, statuses, reasons and evidence references only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from models.repositories.audit import GENESIS, AuditRepository, canonical_time, event_hash
from services.core.auth import Principal


@dataclass(frozen=True, slots=True)
class SystemActor:
    """A process acting on its own account (worker, beat, CLI)."""

    name: str
    org_id: uuid.UUID | None

    @property
    def actor(self) -> str:
        return f"system:{self.name}"


def record(
    session: Session,
    who: Principal | SystemActor,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    AuditRepository(session).append(
        org_id=who.org_id, actor=who.actor, action=action, target=target, details=details or {}
    )


def record_many(
    session: Session,
    who: Principal | SystemActor,
    events: list[tuple[str, str, dict[str, Any]]],
) -> int:
    """(action, target, details) events in order, chained as by `record`, in one go."""
    return AuditRepository(session).append_many(org_id=who.org_id, actor=who.actor,
                                                events=events)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_broken_id: int | None = None
    problem: str | None = None


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; name the first event whose link does not hold."""
    prev = GENESIS
    count = 0
    for event in AuditRepository(session).iterate_all():
        count += 1
        if event.prev_hash != prev:
            return ChainReport(False, count, event.id, "prev_hash does not match the event before")
        expected = event_hash(
            prev, event.org_id, event.actor, event.action, event.target,
            canonical_time(event.at), event.details,
        )
        if expected != event.hash:
            return ChainReport(False, count, event.id, "contents do not match the stored hash")
        prev = event.hash
    head = AuditRepository(session).head()
    if head is not None and (head.last_hash != prev or head.count != count):
        # Events were deleted from the end (or the head was edited): the chain
        # that remains is consistent but shorter than the one that was written.
        return ChainReport(False, count, None,
                           f"the newest {max(head.count - count, 0)} event(s) are missing")
    return ChainReport(True, count)
