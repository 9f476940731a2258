"""The browser pages, served by the API's own FastAPI app (`install`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from services.api.deps import SignInNeeded
from services.api.errors import status_for
from services.core.errors import ConsentGateError, Unauthenticated
from services.web import routes, words

_NOT_PAGES = ("/api/", "/public/", "/static/", "/docs", "/redoc", "/openapi", "/healthz",
              "/readyz", "/metrics")


def _is_page(request: Request) -> bool:
    return (not request.url.path.startswith(_NOT_PAGES)
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="static")

    async def sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        return routes.signin_redirect(exc.next_path)

    app.add_exception_handler(SignInNeeded, sign_in_needed)

    # Pages answer domain errors with a page; everything else keeps the JSON handler.
    json_handler = app.exception_handlers[ConsentGateError]

    async def domain_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ConsentGateError) or not _is_page(request):
            response: Response = await json_handler(request, exc)  # type: ignore[misc]
            return response
        if isinstance(exc, Unauthenticated):
            return routes.signin_redirect(request.url.path)
        return routes.render(request, "error.html", None, status=status_for(exc),
                             message=words.error_for_people(exc))

    app.add_exception_handler(ConsentGateError, domain_error)
