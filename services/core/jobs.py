"""Background jobs are sent only after the transaction that asked for them commits.

A job enqueued inside a transaction that then rolls back is dropped, so a
worker never looks for a row that does not exist. If the broker is down at
commit time, the periodic sweep finds the medium still queued and re-sends.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.db import after_commit
from services.core.celery_app import app

# The re-screen dispatcher (workers/screen/tasks.py): queue an organisation's stale media
# after a gallery change. Named here so every domain package can ask for it.
RESCREEN_TASK = "consentgate.rescreen_stale"


def enqueue(session: Session, task_name: str, *args: str) -> None:
    def send() -> None:
        app.send_task(task_name, args=list(args))

    after_commit(session, send)
