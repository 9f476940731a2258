"""Who is using the browser pages, and whether a form post is really theirs."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from services.api.deps import SessionDep
from services.core.auth import Principal, authenticate
from services.core.errors import Forbidden, Unauthenticated
from services.web import session as websession

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
