"""What an IT lead's monitoring polls: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from pydantic import BaseModel, Field

from services.core import health, metrics
from services.core.config import get_settings
from services.core.errors import Forbidden, Unauthenticated

# Plain words for each readiness result; no host names, ports or keys.
PART_NAMES = {"database": "the database", "broker": "the job queue (broker)",
              "store": "the object store"}
RESULT_WORDS = {
    health.OK: "answers",
    health.DOWN: "is not answering",
    health.TIMEOUT: "did not answer in time",
    health.BUCKET_MISSING: "answers, but its bucket does not exist",
}


class Liveness(BaseModel):
    status: Literal["ok"]


class PartOut(BaseModel):
    ok: bool
    result: Literal["ok", "down", "timeout", "bucket_missing"]
    detail: str = Field(description="what was found, in words")


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, PartOut] = Field(description="one entry per part: database, broker, "
                                       "store")
    failed: list[str] = Field(description="the parts that are down, if any")
    detail: str


def healthz() -> Liveness:
    """The process is up and serving requests. Checks nothing else, so an orchestrator
    does not restart the API because the database is slow: that is `/readyz`."""
    return Liveness(status="ok")


async def readyz() -> JSONResponse:
    """200 when the database, the broker and the object store each answer within the
    timeout (a few seconds); 503 naming the parts that do not (a missing bucket counts
    as down: nothing could be stored)."""
    checks = await run_in_threadpool(health.readiness)
    failed = [c.part for c in checks if not c.ok]
    body = Readiness(
        status="not_ready" if failed else "ready",
        checks={c.part: PartOut(ok=c.ok, result=c.result,
                                detail=f"{PART_NAMES[c.part]} {RESULT_WORDS[c.result]}")
                for c in checks},
        failed=failed,
        detail="; ".join(f"{PART_NAMES[c.part]} {RESULT_WORDS[c.result]}"
                         for c in checks if not c.ok) or "every part answers",
    )
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200,
                        headers={"Retry-After": "10"} if failed else None)


def _metrics_allowed(request: Request) -> None:
    settings = get_settings()
    token = settings.metrics_token
    if token is None:
        if settings.environment == "production":
            raise Forbidden("metrics are switched off until CONSENTGATE_METRICS_TOKEN is set")
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthenticated("missing bearer token for metrics")
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise Forbidden("wrong metrics token")


def make_router(registry: CollectorRegistry) -> APIRouter:
    """The ops routes, with /metrics reading the given registry."""
    router = APIRouter(tags=["ops"])
    router.add_api_route("/healthz", healthz, methods=["GET"], operation_id="healthz",
                         summary="Liveness")
    router.add_api_route("/readyz", readyz, methods=["GET"], operation_id="readyz",
                         summary="Readiness", response_model=Readiness,
                         responses={503: {"model": Readiness,
                                          "description": "a part is down; `failed` names "
                                          "which"}})

    async def metrics_endpoint(_: Annotated[None, Depends(_metrics_allowed)]) -> Response:
        """Queue depth, media by status, screening durations, publish decisions and
        refusals by reason code, takedowns, webhook failures and purges, for Prometheus.
        Production needs `Authorization: Bearer <CONSENTGATE_METRICS_TOKEN>`."""
        body = await run_in_threadpool(metrics.render, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    router.add_api_route(
        "/metrics", metrics_endpoint, methods=["GET"], operation_id="metrics",
        summary="Prometheus metrics", response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                         "description": "Prometheus text exposition format"}})
    return router
