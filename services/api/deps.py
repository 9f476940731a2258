"""Annotated dependencies shared by every route: the API's (bearer tokens) and the pages'
(signed-in browsers, CSRF)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from models.db import transaction
from services.api import websession
from services.core import runtime
from services.core.auth import Principal, authenticate
from services.core.config import Settings, get_settings
from services.core.errors import Forbidden, Unauthenticated
from storage.base import ObjectStore


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent. Requests that
    may change something are write units (on SQLite: BEGIN IMMEDIATE, models.db)."""
    with transaction(runtime.sessions(),
                     write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


def _read_session() -> Iterator[Session]:
    """A read-only session for a request that writes in transactions of its own
    (publishing: no lock is held while the copy is made)."""
    with transaction(runtime.sessions(), write=False) as session:
        yield session


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


# --- the pages: who is using the browser, and whether a form post is theirs ----------

COOKIE = "cg_session"
SIGNIN_COOKIE = "cg_signin"
CSRF_HEADER = "x-csrf-token"


class SignInNeeded(Exception):
    """A page was asked for without a live session: send the browser to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _optional(request: Request, session: SessionDep) -> websession.Current | None:
    return websession.current(session, request.cookies.get(COOKIE))


def _page_user(request: Request, current: OptionalUser) -> websession.Current:
    if current is None:
        raise SignInNeeded(request.url.path)
    return current


def same_origin(request: Request) -> bool:
    """Browsers send Origin on every POST; a different one is another site's form."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _posting_user(request: Request, current: OptionalUser) -> websession.Current:
    if current is None:
        raise Unauthenticated("your session has ended; sign in again")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        value = (await request.form()).get("csrf")
        given = value if isinstance(value, str) else None
    if not same_origin(request) or not websession.csrf_ok(current.csrf, given):
        raise Forbidden("this form has expired or did not come from ConsentGate; reload the "
                        "page and try again")
    return current


def _viewer(request: Request, session: SessionDep) -> Principal:
    """Pictures load in <img> tags (session cookie) and through the API (bearer token)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return authenticate(session, token.strip())
    current = websession.current(session, request.cookies.get(COOKIE))
    if current is None:
        raise Unauthenticated("missing bearer token or session")
    return current.principal


OptionalUser = Annotated[websession.Current | None, Depends(_optional)]
PageUser = Annotated[websession.Current, Depends(_page_user)]
PostingUser = Annotated[websession.Current, Depends(_posting_user)]
Viewer = Annotated[Principal, Depends(_viewer)]
