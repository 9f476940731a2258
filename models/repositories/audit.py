from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import AuditEvent, AuditHead

GENESIS = "0" * 64
# session.info key: this transaction has appended to the audit chain (holds its head).
AUDITED = "consentgate.audited"


def canonical_time(at: datetime) -> str:
    """The hashed form of a time: UTC ISO 8601, whatever zone the database returns."""
    return at.astimezone(UTC).isoformat()


def event_hash(
    prev_hash: str,
    org_id: uuid.UUID | None,
    actor: str,
    action: str,
    target: str,
    at_iso: str,
    details: dict[str, Any],
) -> str:
    """sha256 over a canonical JSON of the event and the previous event's hash."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "org": str(org_id) if org_id else None,
            "actor": actor,
            "action": action,
            "target": target,
            "at": at_iso,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self,
        *,
        org_id: uuid.UUID | None,
        actor: str,
        action: str,
        target: str,
        details: dict[str, Any],
    ) -> AuditEvent:
        # Updating the head row first takes its write lock, so concurrent
        # appends queue up behind each other and each sees the true last hash.
        # Lock order: the organisation's gate lock is always taken before this one.
        self.session.info[AUDITED] = True
        prev = self.session.scalar(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(count=AuditHead.count + 1)
            .returning(AuditHead.last_hash)
        )
        if prev is None:
            self.session.add(AuditHead(id=1, count=1, last_hash=GENESIS))
            self.session.flush()
            prev = GENESIS
        at = utcnow()
        at_iso = canonical_time(at)
        # Round-trip through JSON so the stored details hash the same on read.
        details = json.loads(json.dumps(details, default=str))
        digest = event_hash(prev, org_id, actor, action, target, at_iso, details)
        event = AuditEvent(
            org_id=org_id, actor=actor, action=action, target=target, at=at,
            details=details, prev_hash=prev, hash=digest,
        )
        self.session.add(event)
        self.session.execute(
            update(AuditHead).where(AuditHead.id == 1).values(last_hash=digest)
        )
        self.session.flush()
        return event

    def append_many(
        self,
        *,
        org_id: uuid.UUID | None,
        actor: str,
        events: list[tuple[str, str, dict[str, Any]]],
    ) -> int:
        """Append (action, target, details) events in order with one read and one write of
        the head: a 600-pupil import is thousands of events, not thousands of round trips.
        The chain is the same as appending them one by one."""
        if not events:
            return 0
        self.session.info[AUDITED] = True
        prev = self.session.scalar(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(count=AuditHead.count + len(events))
            .returning(AuditHead.last_hash)
        )
        if prev is None:
            self.session.add(AuditHead(id=1, count=len(events), last_hash=GENESIS))
            self.session.flush()
            prev = GENESIS
        rows: list[dict[str, Any]] = []
        for action, target, raw in events:
            at = utcnow()
            details = json.loads(json.dumps(raw, default=str))
            digest = event_hash(prev, org_id, actor, action, target, canonical_time(at),
                                details)
            rows.append({"org_id": org_id, "actor": actor, "action": action,
                         "target": target, "at": at, "details": details, "prev_hash": prev,
                         "hash": digest})
            prev = digest
        # One executemany, in chain order: ids (and so verify_chain's order) follow it.
        self.session.execute(insert(AuditEvent), rows)
        self.session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
        self.session.flush()
        return len(rows)

    def list_events(self, org_id: uuid.UUID, *, limit: int = 200, before_id: int | None = None
             ) -> list[AuditEvent]:
        query = (
            select(AuditEvent)
            .where(AuditEvent.org_id == org_id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        return list(self.session.scalars(query))

    def head(self) -> AuditHead | None:
        return self.session.get(AuditHead, 1)

    def iterate_all(self) -> Iterator[AuditEvent]:
        yield from self.session.scalars(
            select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=500)
        )
