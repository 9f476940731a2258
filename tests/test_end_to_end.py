"""The foundation's done-when: the register, screening and the gate, end to end over HTTP,
on PostgreSQL, Redis (Celery broker, real worker) and the S3 server."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.flow import run_foundation_story
from tests.support import create_org, token


def test_foundation_story_on_postgres_redis_and_s3(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("leeds-arts", policy="arts-service")
    run_foundation_story(
        client,
        slt=token("leeds-arts", "slt"),
        staff=token("leeds-arts", "staff"),
        publisher=token("leeds-arts", "publisher"),
        faces=faces,
    )
