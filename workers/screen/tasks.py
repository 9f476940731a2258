"""Thin Celery tasks: take ids, call the screening service, decide on retry.

Recovery (docs/safety.md, Recovery): a delivery that dies with its worker is sent again by
the sweep once the time limit and grace have passed (and by the broker after its
visibility timeout); the claim counts deliveries durably, so a file that kills the worker
every time fails after `max_attempts`. Transient errors put the medium back in the queue
with a growing wait (service.defer) for `retry_horizon_s` before it fails; a medium that
failed so is queued again once the store answers (requeue_transient_failures)."""

from __future__ import annotations

import logging
import uuid

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError

from services.core import runtime
from services.core.celery_app import app
from services.core.config import Settings, get_settings
from services.core.errors import ConsentGateError, StorageUnavailable, TransientError
from services.gate import reasons as rc
from services.screen import service
from workers.engine.errors import MediaRejected

log = logging.getLogger(__name__)


@app.task(
    name="consentgate.screen_media",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Transient errors are retried through the database (service.defer), not counted here.
    max_retries=None,
    soft_time_limit=get_settings().screening_time_limit_s,
    # The worker kills a task this long after the soft limit if it ignores it.
    time_limit=get_settings().screening_time_limit_s + get_settings().screening_grace_s,
)
def screen_media(self: Task, media_id: str) -> str | None:
    settings = get_settings()
    sessions = runtime.sessions()
    mid = uuid.UUID(media_id)
    try:
        return service.screen(sessions, runtime.store(), settings, mid)
    except StorageUnavailable as exc:
        return _transient(self, settings, mid, rc.STORAGE_UNAVAILABLE, exc)
    except (OperationalError, DBAPIError) as exc:
        return _transient(self, settings, mid, rc.DATABASE_UNAVAILABLE, exc)
    except TransientError as exc:
        return _transient(self, settings, mid, rc.STORAGE_UNAVAILABLE, exc)
    except SoftTimeLimitExceeded:
        service.mark_failed(sessions, settings, mid, "screening took longer than the time limit",
                            code=rc.SCREENING_TIMED_OUT,
                            data={"limit_s": settings.screening_time_limit_s})
        return "failed"
    except (ConsentGateError, MediaRejected) as exc:
        service.mark_failed(sessions, settings, mid, exc.message)
        return "failed"
    except Exception as exc:
        log.exception("screening crashed for media %s", media_id)
        service.mark_failed(sessions, settings, mid, f"internal error: {type(exc).__name__}")
        return "failed"


def _transient(task: Task, settings: Settings, mid: uuid.UUID, code: str,
               exc: Exception) -> str:
    error = f"{type(exc).__name__}: {exc}"
    try:
        wait = service.defer(runtime.sessions(), settings, mid, code, error)
    except Exception as again:
        # The database is down too: Celery retries the message itself; should the broker
        # be down as well, the sweep finds the medium screening past its limit later.
        log.warning("media %s: cannot record the transient error (%s); retrying", mid, again)
        raise task.retry(exc=exc, countdown=settings.retry_backoff_s) from exc
    return "waiting" if wait is not None else "failed"


@app.task(name="consentgate.sweep_stuck_media", acks_late=True, reject_on_worker_lost=True)
def sweep_stuck_media() -> int:
    return service.sweep_stuck(runtime.sessions(), get_settings())


@app.task(name="consentgate.rescreen_stale", acks_late=True, reject_on_worker_lost=True)
def rescreen_stale(org_id: str) -> int:
    """The register changed: queue the organisation's stale media, most urgent first."""
    return service.dispatch_rescreens(runtime.sessions(), uuid.UUID(org_id))


@app.task(name="consentgate.requeue_transient_failures", acks_late=True,
          reject_on_worker_lost=True)
def requeue_transient_failures() -> int:
    """Probe the store; if it answers, queue again media failed by an outage."""
    return service.requeue_transient_failures(runtime.sessions(), runtime.store(),
                                              get_settings())
