"""Thin Celery tasks: take ids, call the screening service, decide on retry."""

from __future__ import annotations

import logging
import uuid

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from services.core import runtime
from services.core.celery_app import app
from services.core.config import get_settings
from services.core.errors import ConsentGateError, TransientError
from services.screen import service
from workers.engine.errors import MediaRejected

log = logging.getLogger(__name__)

MAX_RETRIES = 6
# The worker kills a task this long after the soft limit if it ignores it.
HARD_LIMIT_GRACE_S = 60


@app.task(
    name="consentgate.screen_media",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=get_settings().screening_time_limit_s,
    time_limit=get_settings().screening_time_limit_s + HARD_LIMIT_GRACE_S,
)
def screen_media(self: Task, media_id: str) -> str | None:
    settings = get_settings()
    sessions = runtime.sessions()
    mid = uuid.UUID(media_id)
    try:
        return service.screen(sessions, runtime.store(), settings, mid)
    except (TransientError, OperationalError) as exc:
        if self.request.retries >= MAX_RETRIES:
            service.mark_failed(sessions, settings, mid,
                                f"gave up after {MAX_RETRIES} retries: {exc}")
            return "failed"
        # Exponential backoff: 2, 4, 8 ... seconds, at most 5 minutes.
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 300)) from exc
    except SoftTimeLimitExceeded:
        service.mark_failed(sessions, settings, mid, "screening took longer than the time limit")
        return "failed"
    except (ConsentGateError, MediaRejected) as exc:
        service.mark_failed(sessions, settings, mid, exc.message)
        return "failed"
    except Exception as exc:
        log.exception("screening crashed for media %s", media_id)
        service.mark_failed(sessions, settings, mid, f"internal error: {type(exc).__name__}")
        return "failed"


@app.task(name="consentgate.sweep_stuck_media", acks_late=True, reject_on_worker_lost=True)
def sweep_stuck_media() -> int:
    return service.sweep_stuck(runtime.sessions(), get_settings())


@app.task(name="consentgate.rescreen_stale", acks_late=True, reject_on_worker_lost=True)
def rescreen_stale(org_id: str) -> int:
    """The register changed: queue the organisation's stale media, most urgent first."""
    return service.dispatch_rescreens(runtime.sessions(), uuid.UUID(org_id))
