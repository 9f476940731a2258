"""The Celery application shared by the production worker and the embedded one.

Embedded installs use kombu's SQLAlchemy transport on a SQLite file under the
data directory, so no broker server is needed; production points
CONSENTGATE_BROKER_URL at Redis or RabbitMQ. The tasks are the same.
"""

from __future__ import annotations

from celery import Celery

from services.core import embedded_broker
from services.core.config import get_settings


def _transport_options(url: str) -> dict[str, object]:
    if url.startswith("sqla+"):
        # The embedded broker polls; see services.core.embedded_broker for the figure.
        embedded_broker.install()
        return {"polling_interval": embedded_broker.POLLING_INTERVAL_S}
    # Redis: a screening unacknowledged for an hour (worker lost) is redelivered.
    return {"visibility_timeout": 3600}


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
        broker_transport_options=_transport_options(settings.resolved_broker_url),
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-stuck-media": {
                "task": "consentgate.sweep_stuck_media",
                "schedule": settings.sweep_interval_s,
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
        },
    )
    return app


app = make_app()
