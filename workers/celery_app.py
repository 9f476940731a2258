"""Entry point for `celery -A workers.celery_app:app`: the one Celery application, built in
services/core/celery_app.py (the tasks are in workers/screen/tasks.py and
workers/lifecycle/tasks.py)."""

from services.core.celery_app import app

__all__ = ["app"]
