"""Engines, sessions, and work that must wait for a commit.

Services only `flush()`; the request or task wrapper commits. Anything with an
effect outside the database (enqueueing a job, deleting a public copy) is
registered with `after_commit` and runs only once the transaction is durable;
a rollback drops it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_PENDING = "consentgate.after_commit"
_UNDO = "consentgate.on_rollback"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the API read while the embedded worker writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@lru_cache(maxsize=8)
def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(url), expire_on_commit=False, autoflush=True)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` after this session's transaction commits; never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(callback)


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Undo an outside effect (an object already written) if the transaction rolls back."""
    session.info.setdefault(_UNDO, []).append(callback)


def _run(callbacks: list[Callable[[], None]], what: str) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The transaction outcome is already final; periodic sweeps re-drive
            # anything a failed callback should have done.
            log.exception("%s callback failed", what)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(_UNDO, None)
    _run(session.info.pop(_PENDING, []), "after-commit")


@event.listens_for(Session, "after_rollback")
def _run_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    _run(session.info.pop(_UNDO, []), "on-rollback")


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The unit of work for a task or CLI command: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
