"""Engines, sessions, and work that must wait for a commit.

Services only `flush()`; the request or task wrapper commits. Anything with an
effect outside the database (enqueueing a job, deleting a public copy) is
registered with `after_commit` and runs only once the transaction is durable;
a rollback drops it.

Write units on SQLite. pysqlite's own transaction handling begins a transaction
lazily at the first write, so the reads that led to a decision ran outside it and
another writer could commit in between. Here every SQLite transaction is begun by
us: `BEGIN IMMEDIATE` (the database write lock, taken before the first read) for a
write unit, plain `BEGIN` (a consistent WAL snapshot) for a read-only one. A write
unit is a session made by `write_session()` or `transaction(..., write=True)`.
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
# Execution option marking a connection whose transaction must begin IMMEDIATE.
WRITE_OPTION = "consentgate_write"
# session.info key: this session's transaction holds the write lock from its start.
WRITE_UNIT = "consentgate.write_unit"
# session.info keys that describe the current transaction only (locks held, audit
# events written): dropped at commit and rollback.
TRANSACTION_KEYS = [WRITE_UNIT, "consentgate.gate_lock", "consentgate.audited"]


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
            # We emit BEGIN ourselves (below); see the module docstring.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

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
    # The next transaction of this session is a new connection, without the option.
    for key in TRANSACTION_KEYS:
        session.info.pop(key, None)
    session.info.pop(_UNDO, None)
    _run(session.info.pop(_PENDING, []), "after-commit")


@event.listens_for(Session, "after_rollback")
def _run_after_rollback(session: Session) -> None:
    for key in TRANSACTION_KEYS:
        session.info.pop(key, None)
    session.info.pop(_PENDING, None)
    _run(session.info.pop(_UNDO, []), "on-rollback")


def begin_write(session: Session) -> Session:
    """Make this (fresh) session a write unit: on SQLite its transaction begins IMMEDIATE,
    so everything it reads is read under the database write lock. On PostgreSQL it
    changes nothing; the gate's row locks (services.core.uow) do the work there."""
    if session.in_transaction():
        raise RuntimeError("begin_write() must be called before the session is used")
    session.connection(execution_options={WRITE_OPTION: True})
    session.info[WRITE_UNIT] = True
    return session


def write_session(factory: sessionmaker[Session]) -> Session:
    return begin_write(factory())


def is_write_unit(session: Session) -> bool:
    return bool(session.info.get(WRITE_UNIT))


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """The unit of work for a task or CLI command: commit on success, roll back on error.
    Write units by default; `write=False` for a read-only look."""
    session = write_session(factory) if write else factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
