"""The Celery application shared by the production worker and the embedded one.

Embedded installs use kombu's SQLAlchemy transport on a SQLite file under the
data directory, so no broker server is needed; production points
CONSENTGATE_BROKER_URL at Redis or RabbitMQ. The tasks are the same.
"""

from __future__ import annotations

from celery import Celery

from services.core import embedded_broker
from services.core.config import Settings, get_settings


def visibility_timeout_s(settings: Settings) -> int:
    """Redis redelivers a message unacknowledged this long (its worker was lost): just
    past the hard time limit, so a screening still running is never sent twice, and a
    lost one is sent again within the time limit plus a minute."""
    return settings.screening_time_limit_s + settings.screening_grace_s + 10


def _transport_options(url: str, settings: Settings) -> dict[str, object]:
    if url.startswith("sqla+"):
        # The embedded broker polls; see services.core.embedded_broker for the figure.
        embedded_broker.install()
        return {"polling_interval": embedded_broker.POLLING_INTERVAL_S}
    return {"visibility_timeout": visibility_timeout_s(settings)}


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("consentgate", broker=settings.resolved_broker_url, include=[
        "workers.screen.tasks",
        "workers.lifecycle.tasks",
    ])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per process: screening is long, and a prefetched
        # message would wait behind it instead of going to an idle worker.
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue="consentgate",
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings.resolved_broker_url, settings),
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stuck-media": {
                "task": "consentgate.sweep_stuck_media",
                "schedule": settings.sweep_interval_s,
                # A sweep not run by the next one's time is dropped, so sweeps do not
                # pile up ahead of the screenings they re-send while workers are busy.
                "options": {"expires": settings.sweep_interval_s},
            },
            # The public URL re-decides on every request, so an expired consent's copy
            # is never served; this sweep takes such copies down and tells the pipeline.
            "recheck-publications": {
                "task": "consentgate.recheck_publications",
                "schedule": 15 * 60,
            },
            "purge-expired-media": {
                "task": "consentgate.purge_expired_media",
                "schedule": 60 * 60,
            },
            "run-outbox": {
                "task": "consentgate.run_outbox",
                "schedule": 60,
            },
            "redrive-webhooks": {
                "task": "consentgate.redrive_webhooks",
                "schedule": 5 * 60,
            },
            # Recovery (issue 12): media failed by an outage are screened again once
            # the store answers; objects whose write was never linked to a row go.
            "requeue-transient-failures": {
                "task": "consentgate.requeue_transient_failures",
                "schedule": settings.storage_probe_interval_s,
                "options": {"expires": settings.storage_probe_interval_s},
            },
            "sweep-intents": {
                "task": "consentgate.sweep_intents",
                "schedule": settings.intent_sweep_interval_s,
            },
        },
    )
    return app


app = make_app()
