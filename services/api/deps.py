"""Annotated dependencies shared by every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from models.db import begin_write

from services.core import runtime
from services.core.auth import Principal, authenticate
from services.core.config import Settings, get_settings
from storage.base import ObjectStore


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent. Requests that
    may change something are write units (on SQLite: BEGIN IMMEDIATE, models.db)."""
    session = runtime.sessions()()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _read_session() -> Iterator[Session]:
    """A read-only session for a request that writes in transactions of its own
    (publishing: no lock is held while the copy is made)."""
    session = runtime.sessions()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _principal(request: Request, session: SessionDep) -> Principal:
    return _authenticate(request, session)


def _read_principal(request: Request, session: ReadSessionDep) -> Principal:
    return _authenticate(request, session)


def _authenticate(request: Request, session: Session) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    return authenticate(session, token.strip() or None)


# scope="function": the commit happens before the response, so a failed commit
# is a 500 and never a 201 for a row that does not exist.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]
SessionsDep = Annotated[sessionmaker[Session], Depends(runtime.sessions)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ObjectStore, Depends(runtime.store)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
ReadPrincipal = Annotated[Principal, Depends(_read_principal)]
