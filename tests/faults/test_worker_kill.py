"""Killed workers (issue 12): a worker's main process `kill -9`ed during screening, again
and again, leaves no medium stuck in `screening`; each ends final within the time limit
plus a minute, with its effects once. A file that kills the worker on every attempt
fails after MAX_ATTEMPTS with the reason, and SLT see it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.orm import AuditEvent, Face
from services.core import runtime
from tests.faults.support import BOUND_S, FINAL, Celery, S3Server, statuses, upload, worker_env
from tests.support import create_org, token


def _claimed(ids: list[uuid.UUID], seen: dict[uuid.UUID, int],
             skip: set[uuid.UUID]) -> uuid.UUID | None:
    """A medium a worker has claimed (its durable attempt count went up) since `seen`
    recorded its count, and is screening now. The sweep's re-send also touches a row
    left screening, but only a claim counts an attempt."""
    for media_id, m in statuses(ids).items():
        if (media_id not in skip and m.status == "screening"
                and m.attempts > seen.get(media_id, 0)):
            seen[media_id] = m.attempts
            return media_id
    return None


@pytest.fixture
def beat(tmp_path: Path, s3: S3Server) -> Celery:
    return Celery(tmp_path, worker_env(s3), role="beat")


def test_kill_9_during_screening_five_times_leaves_every_medium_final_once(
        fault_client: TestClient, s3: S3Server, faces: Path, tmp_path: Path,
        beat: Celery) -> None:
    create_org("school")
    staff = token("school", "staff")
    photo = (faces / "events" / "two_people.jpg").read_bytes()
    ids = upload(fault_client, staff, photo, 6)
    worker = Celery(tmp_path, worker_env(s3))
    killed: dict[uuid.UUID, float] = {}
    final_at: dict[uuid.UUID, float] = {}
    seen: dict[uuid.UUID, int] = {}
    beat.start()
    worker.start()
    try:
        deadline = time.monotonic() + 300
        while len(killed) < 5:
            assert time.monotonic() < deadline, f"only {len(killed)} kills in 300 s"
            victim = _claimed(ids, seen, set(killed))
            if victim is None:
                time.sleep(0.02)
                continue
            worker.kill9()
            if statuses([victim])[victim].status == "screening":
                # Killed before it saved: a screening really lost.
                killed[victim] = time.monotonic()
            worker.start()
        deadline = time.monotonic() + BOUND_S + 30
        while len(final_at) < len(ids) and time.monotonic() < deadline:
            for media_id, m in statuses(ids).items():
                if m.status in FINAL and media_id not in final_at:
                    final_at[media_id] = time.monotonic()
            time.sleep(0.2)
    finally:
        worker.stop()
        beat.stop()

    rows = statuses(ids)
    assert {m.status for m in rows.values()} <= {"screened", "needs_review"}, {
        str(k): (m.status, m.error) for k, m in rows.items()}
    for media_id, at in killed.items():
        took = final_at[media_id] - at
        assert took <= BOUND_S, f"{media_id} final {took:.0f} s after its worker was killed"
    with runtime.sessions()() as session:
        for media_id in ids:
            faces_of = session.scalars(select(Face).where(Face.media_id == media_id)).all()
            assert len(faces_of) == 2, f"{media_id}: {len(faces_of)} faces (two people)"
            boxes = {(f.frame, f.top, f.right, f.bottom, f.left) for f in faces_of}
            assert len(boxes) == 2
            screened = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "media.screened",
                AuditEvent.target == f"media:{media_id}"))
            assert screened == 1, f"{media_id} was saved {screened} times"
    worst = max(final_at[m] - killed[m] for m in killed)
    print(f"5 kills; worst kill-to-final {worst:.1f} s (bound {BOUND_S} s)")


def test_a_file_that_kills_the_worker_every_time_fails_after_max_attempts(
        fault_client: TestClient, s3: S3Server, faces: Path, tmp_path: Path) -> None:
    max_attempts = 3
    create_org("school")
    staff, slt = token("school", "staff"), token("school", "slt")
    photo = (faces / "events" / "obama1.jpg").read_bytes()
    [media_id] = upload(fault_client, staff, photo, 1)
    env = worker_env(s3, CONSENTGATE_MAX_ATTEMPTS=str(max_attempts))
    beat = Celery(tmp_path, env, role="beat")
    worker = Celery(tmp_path, env)
    kills = 0
    seen: dict[uuid.UUID, int] = {}
    beat.start()
    worker.start()
    try:
        deadline = time.monotonic() + max_attempts * BOUND_S + 60
        while time.monotonic() < deadline:
            m = statuses([media_id])[media_id]
            if m.status in FINAL:
                break
            if _claimed([media_id], seen, set()) is not None:
                # This file "crashes the worker": every delivery of it dies.
                worker.kill9()
                kills += 1
                worker.start()
            time.sleep(0.02)
    finally:
        worker.stop()
        beat.stop()

    m = statuses([media_id])[media_id]
    assert m.status == "failed", m.status
    assert kills == max_attempts
    assert m.failure_code == "screening_crashed"
    assert m.failure_data == {"attempts": max_attempts}
    body = fault_client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert body["status"] == "failed"
    assert body["error"] == f"this file crashed the screening {max_attempts} times"
    for decision in body["channels"].values():
        assert decision["allowed"] is False
        assert any(f"crashed the screening {max_attempts} times" in r
                   for r in decision["reasons"])
    queue = fault_client.get("/api/v1/review", headers=slt).json()
    assert [item["media"]["id"] for item in queue] == [str(media_id)]
