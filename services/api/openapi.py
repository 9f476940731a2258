"""API docs that work with no outside network, and the OpenAPI document integrators use.

Schools often filter outbound traffic, so /docs (Swagger UI) loads nothing from a CDN:
its script and styles come from the fastapi-offline wheel (Swagger UI 5, which renders
OpenAPI 3.1; the swagger-ui-bundle wheel has 4.15, which cannot), served by this app under
DOCS_ASSETS. There is no /redoc: ReDoc's standalone file fetches its logo from the
vendor's CDN, so it would not be offline.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import fastapi_offline
from fastapi import FastAPI, Header
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from models.orm import Channel
from services.api.schemas import ReasonOut
from services.takedown.webhooks import TAKEDOWN_EVENT

DOCS_ASSETS = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """Serve /docs from local files (create the app with docs_url=None and redoc_url=None
    so FastAPI's CDN pages are not registered)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            # Swagger UI otherwise sends the spec's URL to validator.swagger.io and shows
            # its badge, for any host but localhost: an outside request, and a leak.
            swagger_ui_parameters={"validatorUrl": None},
        )


# --- the OpenAPI document --------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path of the field in the request, e.g. `status`")
    problem: str


class ErrorOut(BaseModel):
    """Every error answer of the API has this shape (built by services.api.errors)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stable code for programs: unauthenticated, forbidden, "
                       "not_found, conflict, gone, too_large, unsupported_media_type, "
                       "undecodable, invalid, unavailable, storage_unavailable, "
                       "bucket_missing, ...")
    detail: str = Field(description="what went wrong, in words for people")
    reasons: list[str] | None = Field(
        default=None, description="409 from the gate: why it refuses, in words")
    reason_codes: list[ReasonOut] | None = Field(
        default=None, description="409 from the gate: the same reasons as codes with data")
    errors: list[FieldProblem] | None = Field(
        default=None, description="422: each field of the request that is not valid")


class TakedownNotice(BaseModel):
    """Body of the takedown webhook (services.takedown.webhooks.announce_takedown)."""

    event: Literal["publication.taken_down"]
    delivery_id: uuid.UUID = Field(description="the same on every retry: an idempotency key")
    publication_id: uuid.UUID
    media_id: uuid.UUID
    channel: Channel
    url: str = Field(description="the public URL that now answers 410: remove the copy")
    taken_down_at: datetime
    reason: str | None = Field(description="the trigger and the gate's reason codes")


ERROR_WORDS = {
    "401": "no bearer token, or one that is unknown or revoked",
    "403": "the token's role may not do this",
    "404": "no such record in your organisation",
    "409": "the request conflicts with the record's state; from the gate, `reasons` and "
           "`reason_codes` say why it refuses",
    "410": "the medium was purged, rejected or taken down; it will not come back",
    "413": "the file is over the size or pixel limit",
    "415": "the file is not an image or video type ConsentGate accepts",
    "422": "the request is not valid (`errors` names the fields), or the file does not decode",
    "503": "the database, the object store or its bucket is not available; try again later "
           "(Retry-After)",
}

# Words for operations whose route has no docstring of its own (keyed by operation id).
DESCRIPTIONS = {
    "list_pupils": "The organisation's pupils with their consents and enrolment state.",
    "create_pupil": "Add a pupil to the register (SLT or admin). `external_id` is the "
                    "school's own id, unique in the organisation.",
    "get_pupil": "One pupil with consents, templates and whether re-enrolment is due.",
    "set_active": "Mark a pupil as having left (or back). A leaver's published copies are "
                  "taken down at once and are never published again.",
    "biometric_consent": "Record biometric consent for face matching. Withdrawn or objected "
                         "deletes the pupil's face templates and reference photos.",
    "add_reference_photo": "Enrol a reference photo (needs biometric consent). The photo "
                           "must show exactly one face.",
    "set_consent": "Record publication consent for one channel; withdrawal takes down "
                   "every live copy showing the pupil on that channel.",
    "consent_history": "Every consent record of the pupil, newest first.",
    "upload": "Upload a photo or video for screening. Answers 202 with the medium queued; "
              "poll GET /api/v1/media/{media_id} for the result.",
    "list_media": "Media of the organisation (staff see their own uploads), newest first; "
                  "purged media are left out.",
    "media_detail": "One medium: status, faces and the gate's decision for each channel.",
    "approve": "SLT approval to publish a blocked medium on the channels, with a reason.",
    "list_publications": "Live (and on request withdrawn) published copies.",
    "review_queue": "Media waiting for SLT review, with why each is blocked.",
    "published_copy": "The public copy. The gate decides again on every request: 410 once "
                      "consent is gone, 503 while a re-check is pending. No token needed.",
    "legal_holds": "The medium's legal hold, if any, and its history.",
    "review_one": "Everything SLT need to review one medium: faces, tracks, consents.",
    "confirm": "A second SLT member confirms a decision that needs two.",
    "decline": "A second SLT member declines a decision that needs two.",
    "face_crop": "A JPEG crop of one face, for review (bearer token or signed-in session).",
    "reference_photo": "A reference photo of the pupil, for review (SLT or admin).",
}

# Second success answers a route gives besides its declared status: (status, words).
ALSO_SUCCESS = {
    "publish": ("200", "already live on the channel, or this Idempotency-Key was seen "
                       "before: the existing copy"),
}

_WRITE = {"post", "put", "patch", "delete"}


def operation_id(route: APIRoute) -> str:
    """Stable ids integrators can generate clients from: the route function's name."""
    return route.name


def _errors_for(path: str, method: str, op: dict[str, Any]) -> list[str]:
    if path in ("/healthz", "/readyz"):
        return []
    if path == "/metrics":
        return ["401", "403"]
    if path.startswith("/public/"):
        return ["404", "410", "503"]
    codes = ["401", "403", "503"]
    if "{" in path:
        codes += ["404"]
    if "{media_id}" in path:
        codes += ["410"]
    if method in _WRITE:
        codes += ["409"]
    if "multipart/form-data" in op.get("requestBody", {}).get("content", {}):
        codes += ["413", "415"]
    if op.get("parameters") or op.get("requestBody"):
        codes += ["422"]
    return codes


def _binary_types(path: str) -> list[str]:
    """Routes that answer with file bytes, not JSON."""
    if path.startswith("/public/"):
        return ["image/jpeg", "video/mp4", "video/quicktime", "video/webm"]
    if path.endswith(".jpg"):
        return ["image/jpeg"]
    if path.endswith(".webm"):
        return ["video/webm"]
    return []


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus: the bearer scheme, every error answer with the shape the
    API really sends, and descriptions on every operation."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, openapi_version="3.1.0",
                         description=app.description, routes=app.routes,
                         webhooks=app.webhooks.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorOut"] = error_schema
    # FastAPI's own 422 shape is not what the API sends (services.api.errors).
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API token from `consentgate token create`."},
        "metrics_token": {"type": "http", "scheme": "bearer",
                          "description": "CONSENTGATE_METRICS_TOKEN (GET /metrics only)."},
    }
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            if not op.get("description"):
                op["description"] = DESCRIPTIONS.get(op["operationId"], op.get("summary", ""))
            if path.startswith("/api/"):
                op["security"] = [{"bearer": []}]
            elif path == "/metrics":
                op["security"] = [{"metrics_token": []}]
            responses = op.setdefault("responses", {})
            binary = _binary_types(path)
            if binary and "200" in responses:
                responses["200"]["content"] = {
                    t: {"schema": {"type": "string", "format": "binary"}} for t in binary}
            if op["operationId"] in ALSO_SUCCESS:
                status, words = ALSO_SUCCESS[op["operationId"]]
                declared = next(c for c in responses if c.startswith("2"))
                responses[status] = {**responses[declared], "description": words}
            # FastAPI adds a 422 of its own shape wherever there are parameters.
            responses.pop("422", None)
            for code in _errors_for(path, method, op):
                responses[code] = {"description": ERROR_WORDS[code],
                                   "content": {"application/json": {"schema": error_ref}}}
    for hook in schema.get("webhooks", {}).values():
        for op in hook.values():
            # What the receiver answers is up to it: any 2xx is success.
            op["responses"] = {"2XX": {"description": "received; not sent again"}}
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    @app.webhooks.post(TAKEDOWN_EVENT, operation_id="takedown_webhook",
                       summary="A published copy was taken down")
    def takedown_webhook(
        notice: TakedownNotice,
        x_consentgate_event: Annotated[str, Header(description=TAKEDOWN_EVENT)],
        x_consentgate_delivery: Annotated[uuid.UUID, Header(
            description="delivery id: at least once, so treat it as an idempotency key")],
        x_consentgate_timestamp: Annotated[str, Header(description="unix seconds")],
        x_consentgate_signature: Annotated[str, Header(
            description="`sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}` with the "
                        "organisation's webhook secret")],
    ) -> None:
        """ConsentGate POSTs this to the organisation's webhook URL (`consentgate org
        webhook`) when a published copy is taken down: remove it from the site. Check the
        signature and that the timestamp is within 5 minutes. Any 2xx answer counts as
        delivered; anything else is retried with backoff, and after the last attempt the
        delivery is listed as failed in GET /api/v1/webhook-deliveries. Missed notices
        can be caught up from GET /api/v1/takedowns."""

    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
