"""Thin Celery tasks: take ids, call the lifecycle services. Each is idempotent, so a
redelivered or duplicated message does no harm."""

from __future__ import annotations

import logging
import uuid

from celery import Task
from sqlalchemy.exc import OperationalError

from services.biometrics import reenrol
from services.core import intents, outbox, runtime
from services.core.celery_app import app
from services.core.config import get_settings
from services.core.errors import TransientError
from services.lifecycle import retention
from services.takedown import service as takedown
from services.takedown import webhooks

log = logging.getLogger(__name__)

REENROL_MAX_RETRIES = 6


@app.task(
    name=webhooks.DELIVER_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Attempts are counted in the delivery row (CONSENTGATE_WEBHOOK_MAX_ATTEMPTS), not here.
    max_retries=None,
)
def deliver_webhook(self: Task, delivery_id: str) -> str:
    wait = webhooks.attempt_delivery(runtime.sessions(), get_settings(),
                                     uuid.UUID(delivery_id))
    if wait is None:
        return "done"
    raise self.retry(countdown=wait)


@app.task(name="consentgate.redrive_webhooks", acks_late=True, reject_on_worker_lost=True)
def redrive_webhooks() -> int:
    return webhooks.redrive_overdue(runtime.sessions())


@app.task(name="consentgate.recheck_publications", acks_late=True, reject_on_worker_lost=True)
def recheck_publications() -> int:
    return takedown.recheck_all(runtime.sessions(), get_settings())


@app.task(name="consentgate.purge_expired_media", acks_late=True, reject_on_worker_lost=True)
def purge_expired_media() -> int:
    return retention.purge_due(runtime.sessions(), runtime.store())


@app.task(name="consentgate.run_outbox", acks_late=True, reject_on_worker_lost=True)
def run_outbox() -> int:
    return outbox.run_items(runtime.sessions(), runtime.store())


@app.task(
    name=reenrol.REENROL_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=REENROL_MAX_RETRIES,
)
def reenrol_templates(self: Task, job_id: str) -> str:
    """Recompute an organisation's templates (services.biometrics.reenrol); resumes at the
    job's cursor when redelivered or retried."""
    sessions = runtime.sessions()
    jid = uuid.UUID(job_id)
    try:
        return reenrol.run(sessions, runtime.store(), get_settings(), jid).status
    except (TransientError, OperationalError) as exc:
        if self.request.retries >= REENROL_MAX_RETRIES:
            reenrol.mark_failed(sessions, jid, f"gave up after {REENROL_MAX_RETRIES} retries: "
                                f"{exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=min(2 ** (self.request.retries + 1), 300)) from exc
    except Exception as exc:
        log.exception("re-enrolment crashed for job %s", job_id)
        reenrol.mark_failed(sessions, jid, f"internal error: {type(exc).__name__}")
        return "failed"


@app.task(name="consentgate.sweep_intents", acks_late=True, reject_on_worker_lost=True)
def sweep_intents() -> int:
    """Delete every version of objects whose write intent was never linked by a row."""
    return len(intents.sweep(runtime.sessions(), runtime.store(), get_settings()).deleted)
