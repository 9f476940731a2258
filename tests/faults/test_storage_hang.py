"""A storage hang during an upload (issue 12): the upload answers 503 in bounded time, and
whatever the store lands once it resumes is deleted by the intent sweep."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.clock import utcnow
from models.orm import Media, PendingObject
from services.core import intents, runtime
from services.core.config import get_settings
from tests.faults.support import S3Server
from tests.support import create_org, token

# app_env: connect 2 s, read 3 s, 2 retries; the upload's PUT and the rollback's delete
# each give up within about 3 x (2 + 3) s.
ANSWER_WITHIN_S = 45


def _count(model: type) -> int:
    with runtime.sessions()() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_hung_store_fails_the_upload_quickly_and_the_sweep_removes_what_landed_later(
        fault_client: TestClient, s3: S3Server, faces: Path) -> None:
    create_org("school")
    staff = token("school", "staff")
    photo = (faces / "events" / "two_people.jpg").read_bytes()

    s3.stop()
    started = time.monotonic()
    r = fault_client.post("/api/v1/media", headers=staff,
                          data={"event": "Play", "purpose": "publicity", "device": "school"},
                          files={"file": ("play.jpg", photo, "image/jpeg")})
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert took < ANSWER_WITHIN_S, f"the upload took {took:.0f} s to give up"
    assert _count(Media) == 0

    # The intent was committed before the write, so the key is known though no row is.
    with runtime.sessions()() as session:
        keys = list(session.scalars(select(PendingObject.key)))
    assert len(keys) == 1 and keys[0].startswith("originals/")
    key = keys[0]

    s3.resume()
    store = s3.store()
    # The server now works through the requests it buffered while stopped: every retry
    # of the PUT lands as a version, after the rollback's delete (which timed out) ran.
    deadline = time.monotonic() + 30
    seen = 0
    while time.monotonic() < deadline:
        now_seen = store.count_versions(key)
        if now_seen and now_seen == seen:
            break
        seen = now_seen
        time.sleep(1.0)
    landed = store.count_versions(key)
    assert landed >= 1, "expected the hung writes to land once the store resumed"
    print(f"hung store: upload answered 503 after {took:.1f} s; "
          f"{landed} version(s) landed on resuming")

    # Within the grace period the sweep leaves the upload alone (it may be in flight) ...
    settings = get_settings()
    assert intents.sweep(runtime.sessions(), runtime.store(), settings).deleted == []
    assert store.count_versions(key) == landed
    # ... after it, every version under the key goes, and the intent with them.
    later = utcnow() + timedelta(seconds=settings.intent_grace_s + 1)
    swept = intents.sweep(runtime.sessions(), runtime.store(), settings, now=later)
    assert swept.deleted == [key]
    assert store.count_versions("") == 0
    assert _count(PendingObject) == 0
    assert _count(Media) == 0
