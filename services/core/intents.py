"""No orphaned objects: an intent is committed before every object write.

Write path (uploads' originals, reference photos, published copies, derived files):

1. `record(key)` commits a pending-object row (key + time) in its own short transaction,
   *before* the bytes go to the store;
2. the object is written;
3. the transaction that commits the row owning the object calls `link(session, key)`,
   which deletes the intent in that same transaction.

So whatever happens in between (the store hangs and later lands three versions of a
photo, the process is killed, the request rolls back and its undo cannot reach the
store), an intent older than `intent_grace_s` that was never linked names a key that no
committed row owns: `sweep` deletes every version under it. `link` refuses (a transient
error, so the owner rolls back) if the sweep already took the intent, so a row never
points at an object the sweep deleted.

On SQLite (the embedded install) a request that writes holds the database's one write
lock from its start, so no second transaction can commit before it: there the intent is
written in the caller's transaction and only a crash between the write and the commit
can leave an object; `consentgate storage reconcile` finds it (and the filesystem
store's rollback undo handles every failure short of a crash).

`reconcile` is the full check: every object key in the store (current or only old
versions) that no row owns and no young intent covers is listed, and deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import is_write_unit, transaction
from models.repositories.intents import IntentRepository
from services.core import runtime
from services.core.config import Settings
from services.core.errors import StorageUnavailable, TransientError
from storage.base import ObjectStore

log = logging.getLogger(__name__)

SWEEP_BATCH = 500


def _holds_sqlite_write_lock(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite" and is_write_unit(session)


def record(key: str, *, session: Session | None = None) -> None:
    """Commit an intent to write `key`, before writing it. `session` is the caller's (its
    database is used; on SQLite, if it holds the write lock, its transaction is)."""
    if session is not None and _holds_sqlite_write_lock(session):
        IntentRepository(session).add(key, utcnow())
        return
    sessions = (sessionmaker(bind=session.get_bind(), expire_on_commit=False)
                if session is not None else runtime.sessions())
    with transaction(sessions) as own:
        IntentRepository(own).add(key, utcnow())


def link(session: Session, key: str) -> None:
    """The row owning `key` is being committed in this transaction: the intent is done.
    Raises TransientError if the sweep already removed the intent (and the object)."""
    repo = IntentRepository(session)
    if repo.lock(key) is None:
        raise TransientError("the file took too long to store and was cleaned away; "
                             "try again", key=key)
    repo.clear([key])


def forget(key: str) -> None:
    """The object under `key` was deleted again by its writer: drop the intent."""
    with transaction(runtime.sessions()) as session:
        IntentRepository(session).clear([key])


@dataclass
class SweepResult:
    deleted: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def sweep(sessions: sessionmaker[Session], store: ObjectStore, settings: Settings,
          now: datetime | None = None) -> SweepResult:
    """Delete every version under keys whose intent is older than the grace period and
    that no committed row owns; drop intents whose row does own the key."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.intent_grace_s)
    with transaction(sessions, write=False) as session:
        keys = [p.key for p in IntentRepository(session).older_than(cutoff, SWEEP_BATCH)]
    result = SweepResult()
    for key in keys:
        try:
            with transaction(sessions) as session:
                repo = IntentRepository(session)
                # Held until commit: an owner linking now waits, then finds it gone.
                if repo.lock(key) is None:
                    continue
                if repo.owned([key]):
                    result.linked.append(key)
                else:
                    store.delete(key)
                    result.deleted.append(key)
                repo.clear([key])
        except StorageUnavailable as exc:
            log.warning("intent sweep could not delete an object; will retry: %s", exc)
            result.failed.append(key)
    if result.deleted:
        log.warning("intent sweep deleted %d object(s) that no row owns", len(result.deleted))
    return result


Track = Callable[[list[str], str], Iterable[str]]


def _plain(items: list[str], _label: str) -> Iterable[str]:
    return items


@dataclass
class ReconcileReport:
    orphans: list[str]
    deleted: int
    dry_run: bool


def reconcile(sessions: sessionmaker[Session], store: ObjectStore, settings: Settings, *,
              dry_run: bool = False, track: Track = _plain,
              now: datetime | None = None) -> ReconcileReport:
    """Find (and unless dry_run delete, every version of) each object no row owns: objects
    written and never recorded, and old versions left of objects whose rows are gone.
    Keys with an intent younger than the grace period are uploads in flight: left alone.
    `track(items, label)` wraps each long loop (a progress bar)."""
    # List first, then read rows and intents: anything written after the listing is not
    # in it, and anything in it that is in flight has its intent committed already.
    listed = sorted(set(store.list_version_keys("")))
    young = (now or utcnow()) - timedelta(seconds=settings.intent_grace_s)
    # A write unit: on SQLite it waits for an upload holding the write lock to commit.
    with transaction(sessions) as session:
        repo = IntentRepository(session)
        in_flight = repo.created_since(young)
        owned = repo.owned(listed)
        orphans = [k for k in listed if k not in owned and k not in in_flight]
        deleted = 0
        if not dry_run:
            for key in track(orphans, "removing orphans"):
                store.delete(key)
                deleted += 1
            repo.clear(orphans)
    return ReconcileReport(orphans=orphans, deleted=deleted, dry_run=dry_run)
