"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.config import ConfigurationError
from services.core.errors import (
    Conflict,
    ConsentGateError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    TooLarge,
    TransientError,
    Unauthenticated,
    UnsupportedMediaType,
    scrub,
)
from services.gate.reasons import Reason
from services.words import reason_texts
from workers.engine.errors import MediaRejected

log = logging.getLogger(__name__)

# Most specific first: TooLarge and UnsupportedMediaType are InvalidInput too.
STATUS: list[tuple[type[ConsentGateError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (TooLarge, 413),
    (UnsupportedMediaType, 415),
    (InvalidInput, 422),
    (TransientError, 503),
]


# The face engine's own refusals of a file (it imports nothing from services/).
MEDIA_STATUS = {"too_large": 413, "unsupported_media_type": 415, "undecodable": 422}


def status_for(exc: ConsentGateError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(code: str, message: str, /, **details: Any) -> dict[str, Any]:
    # Positional-only: an error whose details carry a "code" (a store's S3 code, the
    # engine's refusal code) must not collide with the argument and crash into a 500.
    return {"error": code, "detail": message, **details}


def install(app: FastAPI) -> None:
    @app.exception_handler(ConsentGateError)
    async def _domain(_: Request, exc: ConsentGateError) -> JSONResponse:
        status = status_for(exc)
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if status == 503:
            headers["Retry-After"] = "30"
        details = dict(exc.details)
        code = str(details.pop("error_code", exc.code))
        message = exc.message
        if status == 503:
            # Outages are explained in plain words; where and what failed is in the log.
            log.warning("unavailable (%s): %s %s", code, exc.message, details)
            message, details = scrub(exc.message), {}
        reasons = details.get("reasons")
        if isinstance(reasons, list) and all(isinstance(r, Reason) for r in reasons):
            details["reasons"] = reason_texts(reasons)
            details["reason_codes"] = [r.as_json() for r in reasons]
        return JSONResponse(error_body(code, message, **details), status_code=status,
                            headers=headers or None)

    @app.exception_handler(MediaRejected)
    async def _media(_: Request, exc: MediaRejected) -> JSONResponse:
        status = MEDIA_STATUS.get(exc.code, 422)
        # Decoder messages can quote paths or object reprs: plain words only.
        details = {k: scrub(v) if isinstance(v, str) else v for k, v in exc.details.items()}
        return JSONResponse(error_body(exc.code, exc.message, **details),
                            status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid", "the request is not valid", errors=errors),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body("http_error", str(exc.detail)),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        if isinstance(exc, ConfigurationError):
            return JSONResponse(error_body("misconfigured", scrub(str(exc))), status_code=500)
        return JSONResponse(error_body("internal", "internal error; nothing was changed"),
                            status_code=500)
