"""The FastAPI application: the one gateway for uploads, the register and publishing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from services.api import errors
from services.api.errors import error_body
from services.api.routes import biometrics as biometrics_routes
from services.api.routes import imports as import_routes
from services.api.routes import lifecycle, media, public, pupils, review
from services.api.routes import sessions as photo_sessions
from services.api.routes import tokens as token_routes
from services.core import runtime
from services.core.config import get_settings
from services.web import install as install_web_pages

log = logging.getLogger(__name__)

# Multipart framing around the file; a request over limit + this is refused unread.
MULTIPART_SLACK = 64 * 1024


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="ConsentGate",
        version="1",
        description="Consent-aware image screening for schools.",
    )
    errors.install(app)

    @app.middleware("http")
    async def refuse_oversized(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        limit = settings.max_upload_bytes + MULTIPART_SLACK
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse(
                error_body("too_large", f"request is larger than the "
                           f"{settings.max_upload_bytes // (1024 * 1024)} MiB limit"),
                status_code=413,
            )
        return await call_next(request)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        with runtime.sessions()() as session:
            session.execute(text("SELECT 1"))
        runtime.store().exists("healthz")
        return {"status": "ok"}

    app.include_router(pupils.router)
    app.include_router(media.router)
    app.include_router(public.router)
    app.include_router(lifecycle.router)
    app.include_router(review.router)
    app.include_router(import_routes.router)
    app.include_router(token_routes.router)
    app.include_router(biometrics_routes.router)
    app.include_router(photo_sessions.router)
    install_web_pages(app)
    return app
