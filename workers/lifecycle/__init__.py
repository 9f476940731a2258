"""Celery tasks of the consent lifecycle: webhook delivery, consent re-check, retention purge."""
