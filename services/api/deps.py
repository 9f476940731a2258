"""Annotated dependencies shared by every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from services import runtime
from services.auth import Principal, authenticate
from services.config import Settings, get_settings
from storage.base import ObjectStore


def _session() -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
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
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    return authenticate(session, token.strip() or None)


# scope="function": the commit happens before the response, so a failed commit
# is a 500 and never a 201 for a row that does not exist.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ObjectStore, Depends(runtime.store)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
