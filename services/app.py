"""The FastAPI application: the one gateway for uploads, the register and publishing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.api import errors
from services.api.errors import error_body
from services.api.openapi import install_docs, install_openapi, operation_id
from services.api.routes import biometrics as biometrics_routes
from services.api.routes import imports as import_routes
from services.api.routes import lifecycle, media, ops, public, pupils, review
from services.api.routes import sessions as photo_sessions
from services.api.routes import tokens as token_routes
from services.core import metrics
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
        # Served from local files by services.api.openapi (no CDN).
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
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

    # /healthz (no dependencies), /readyz (database, broker, store), /metrics.
    app.include_router(ops.make_router(metrics.make_registry()))
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
    install_docs(app)
    install_openapi(app)
    return app
