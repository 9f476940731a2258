"""The transactional outbox for object deletions.

A change that must delete objects (a biometric erasure deleting reference photos, a
takedown deleting its public copy) writes an outbox row in its own transaction instead
of calling the store. After commit each row is attempted once at once; whatever fails
(storage down, a hang cut off by the client's timeout) stays pending and is retried by
the `consentgate.run_outbox` beat job with backoff until it succeeds. So a consent
change never rolls back because storage is down, and no delete is ever forgotten.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import after_commit, transaction
from models.orm import OutboxItem, OutboxStatus
from models.repositories.outbox import OutboxRepository
from services.core import runtime
from storage.base import ObjectStore

log = logging.getLogger(__name__)

DELETE_OBJECT = "delete_object"
DELETE_PREFIX = "delete_prefix"
# Seconds before the n-th retry: 5, 10, 20 ... at most 10 minutes.
BASE_BACKOFF_S = 5.0
MAX_BACKOFF_S = 600.0
ERROR_CHARS = 500


def _add(session: Session, org_id: Any, kind: str, payload: dict[str, Any]) -> None:
    item = OutboxRepository(session).add(OutboxItem(
        org_id=org_id, kind=kind, payload=payload, status=OutboxStatus.PENDING.value,
        attempts=0, created_at=utcnow(), next_attempt_at=utcnow(),
    ))
    item_id = item.id
    # The same database as the change (whatever the process's default is).
    sessions = sessionmaker(bind=session.get_bind(), expire_on_commit=False)

    def attempt() -> None:
        run_items(sessions, runtime.store(), [item_id])

    after_commit(session, attempt)


def delete_object(session: Session, key: str, *, org_id: Any = None) -> None:
    """Delete every version of the object at `key` once this transaction commits: tried
    straight after commit, then by the beat job until it succeeds."""
    _add(session, org_id, DELETE_OBJECT, {"key": key})


def delete_prefix(session: Session, prefix: str, *, org_id: Any = None) -> None:
    _add(session, org_id, DELETE_PREFIX, {"prefix": prefix})


def _perform(store: ObjectStore, kind: str, payload: dict[str, Any]) -> None:
    if kind == DELETE_OBJECT:
        store.delete(str(payload["key"]))
    elif kind == DELETE_PREFIX:
        store.delete_prefix(str(payload["prefix"]))
    else:
        raise ValueError(f"unknown outbox item kind {kind!r}")


def run_items(sessions: sessionmaker[Session], store: ObjectStore,
              item_ids: list[int] | None = None, *, limit: int = 500) -> int:
    """Attempt the given (or every due) pending item; return how many were done."""
    with transaction(sessions, write=False) as session:
        repo = OutboxRepository(session)
        items = [(i.id, i.kind, dict(i.payload)) for i in
                 (repo.pending(item_ids) if item_ids is not None else repo.due(utcnow(), limit))]
    done = 0
    for item_id, kind, payload in items:
        error: str | None = None
        try:
            _perform(store, kind, payload)
        except Exception as exc:  # storage errors of every kind: retried later
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
            log.warning("outbox item %s (%s) failed; will retry: %s", item_id, kind, error)
        with transaction(sessions) as session:
            item = OutboxRepository(session).lock(item_id)
            if item is None or item.status != OutboxStatus.PENDING:
                continue
            item.attempts += 1
            if error is None:
                item.status = OutboxStatus.DONE.value
                item.done_at = utcnow()
                item.last_error = None
                done += 1
            else:
                item.last_error = error
                wait = min(BASE_BACKOFF_S * 2 ** (item.attempts - 1), MAX_BACKOFF_S)
                item.next_attempt_at = utcnow() + timedelta(seconds=wait)
    return done
