"""Storage outages during screening (issue 12). The store is the moto child stopped with
SIGSTOP, so every request hangs until the client's timeouts, as with a wedged MinIO.

The issue's case is a 5-minute outage against retries that last at least an hour, with
the default settings: `make test` runs it beside the rest of the suite (scripts/pytest.sh),
since it spends its time waiting. The other tests scale it: an outage well inside the
(shortened) retry horizon ends with every medium screened and none ever failed; an
outage longer than the horizon fails media for a transient reason, and they are screened
automatically once the store answers. The defaults are checked to retry for at least an
hour."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.orm import AuditEvent
from services.core import runtime
from services.core.config import Settings
from services.screen.service import retry_schedule
from tests.faults.support import Celery, S3Server, statuses, upload, worker_env
from tests.support import create_org, token

# Screening finished: an unenrolled face sends the photo to review, which is a result.
SCREENED = {"screened", "needs_review"}


def test_the_default_settings_retry_transient_errors_for_at_least_an_hour() -> None:
    waits = retry_schedule(Settings())
    assert sum(waits) >= 3600
    assert max(waits) <= 600  # never more than ten minutes between tries
    assert waits[0] <= 30


def _run_outage(client: TestClient, s3: S3Server, faces: Path, tmp: Path,
                outage_s: float, recover_s: float = 180,
                **settings: str) -> tuple[list[uuid.UUID], set[str]]:
    """Upload three photos, stop the store, start screening, resume the store after
    `outage_s`; return the media and every status seen during the outage."""
    create_org("school")
    staff = token("school", "staff")
    photo = (faces / "events" / "obama1.jpg").read_bytes()
    ids = upload(client, staff, photo, 3)
    scaled = {"CONSENTGATE_RETRY_BACKOFF_S": "2", "CONSENTGATE_RETRY_MAX_BACKOFF_S": "8",
              "CONSENTGATE_STORAGE_PROBE_INTERVAL_S": "3"}
    env = worker_env(s3, **{**scaled, **settings})
    worker, beat = Celery(tmp, env), Celery(tmp, env, role="beat")
    seen: set[str] = set()
    s3.stop()
    worker.start()
    beat.start()
    try:
        worker.wait_ready()
        resume_at = time.monotonic() + outage_s
        while time.monotonic() < resume_at:
            seen.update(m.status for m in statuses(ids).values())
            time.sleep(0.5)
        s3.resume()
        deadline = time.monotonic() + recover_s
        while time.monotonic() < deadline:
            if all(m.status in SCREENED for m in statuses(ids).values()):
                break
            time.sleep(0.5)
    finally:
        worker.stop()
        beat.stop()
    return ids, seen


def test_an_outage_inside_the_retry_horizon_ends_with_every_medium_screened_none_failed(
        fault_client: TestClient, s3: S3Server, faces: Path, tmp_path: Path) -> None:
    # 45 s against a 9-minute horizon: the 5 minutes against an hour, scaled.
    ids, seen = _run_outage(fault_client, s3, faces, tmp_path, 45,
                            CONSENTGATE_RETRY_HORIZON_S="540")
    rows = statuses(ids)
    assert {m.status for m in rows.values()} <= SCREENED, {
        str(k): (m.status, m.error) for k, m in rows.items()}
    assert "failed" not in seen
    assert "queued" in seen  # they waited out the outage in the queue
    with runtime.sessions()() as session:
        failures = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "media.screening_failed"))
    assert failures == 0
    for m in rows.values():
        assert m.attempts == 0 and m.transient_since is None and m.failure_code is None


def test_an_outage_past_the_retry_horizon_is_screened_again_once_the_store_answers(
        fault_client: TestClient, s3: S3Server, faces: Path, tmp_path: Path) -> None:
    ids, seen = _run_outage(fault_client, s3, faces, tmp_path, 50,
                            CONSENTGATE_RETRY_HORIZON_S="15")
    assert "failed" in seen  # the outage outlasted the retries ...
    rows = statuses(ids)
    # ... and once the store answered, every medium was screened, none left failed.
    assert {m.status for m in rows.values()} <= SCREENED, {
        str(k): (m.status, m.error) for k, m in rows.items()}
    with runtime.sessions()() as session:
        failed = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "media.screening_failed")).all()
        requeued = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "media.requeued"))
    assert failed and all(e.details["code"] == "storage_unavailable" for e in failed)
    assert requeued == len(failed)


@pytest.mark.skipif(not os.environ.get("CONSENTGATE_LONG_FAULT_TESTS"),
                    reason="a real 5-minute outage, about 6 to 10 min: `make test` runs it "
                           "beside the suite; alone, set CONSENTGATE_LONG_FAULT_TESTS=1")
def test_a_five_minute_outage_with_the_default_retry_settings_ends_with_none_failed(
        fault_client: TestClient, s3: S3Server, faces: Path, tmp_path: Path) -> None:
    # The case as it is: 5 minutes, the default waits (15 s doubling to 10 min)
    # and horizon (1 h). The last wait before the store returns can be as long as the
    # outage so far, so recovery may take about as long again.
    defaults = {name: str(getattr(Settings(), name.removeprefix("CONSENTGATE_").lower()))
                for name in ("CONSENTGATE_RETRY_BACKOFF_S", "CONSENTGATE_RETRY_MAX_BACKOFF_S",
                             "CONSENTGATE_RETRY_HORIZON_S",
                             "CONSENTGATE_STORAGE_PROBE_INTERVAL_S")}
    ids, seen = _run_outage(fault_client, s3, faces, tmp_path, 300, recover_s=420, **defaults)
    rows = statuses(ids)
    assert {m.status for m in rows.values()} <= SCREENED, {
        str(k): (m.status, m.error) for k, m in rows.items()}
    assert "failed" not in seen
