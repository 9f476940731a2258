"""Screening through the real Celery worker and Redis broker: failures fail closed, lost
messages are recovered by the sweep, and SLT approval gates publication where the policy
says so."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from models.clock import utcnow
from models.orm import Media, MediaStatus
from models.repositories.organisations import OrganisationRepository, TokenRepository
from services.core import runtime
from services.core.auth import hash_token
from tests.support import create_org, token, wait_screened
from workers.screen.tasks import screen_media, sweep_stuck_media


def _landscape() -> bytes:
    """A face-free picture: smooth gradients and blocks, like a photo of the stage set."""
    h, w = 360, 480
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1)
    img[100:200, 150:300] = (30, 90, 160)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _insert_media(org_slug: str, headers: dict[str, str], key: str,
                  minutes_ago: int = 0) -> uuid.UUID:
    """A medium row as the upload gateway writes it, but with no message sent."""
    secret = headers["Authorization"].split()[1]
    with runtime.sessions().begin() as session:
        org = OrganisationRepository(session).get_by_slug(org_slug)
        tok = TokenRepository(session).get_active_by_hash(hash_token(secret))
        assert org is not None and tok is not None
        when = utcnow() - timedelta(minutes=minutes_ago)
        media = Media(
            org_id=org.id, uploaded_by=tok.id, uploader_name="staff", event="Play",
            purpose="website", device="school", sha256="0" * 64, size_bytes=1,
            kind="image", mime="image/jpeg", status=MediaStatus.QUEUED.value, attempts=0,
            retention_until=utcnow().date(), original_key=key, created_at=when,
            status_changed_at=when,
        )
        session.add(media)
        session.flush()
        return media.id


def test_a_screening_failure_blocks_and_goes_to_the_front_of_the_review_queue(
    client: TestClient, celery_worker: None
) -> None:
    create_org("school", policy="arts-service")
    staff, slt = token("school", "staff"), token("school", "slt")
    media_id = _insert_media("school", staff, key="originals/missing/object.jpg")
    screen_media.delay(str(media_id))
    body = wait_screened(client, slt, str(media_id), timeout=60)
    assert body["status"] == "failed"
    assert body["error"]
    for decision in body["channels"].values():
        assert decision["allowed"] is False
        assert any("screening failed" in r for r in decision["reasons"])
    queue = client.get("/api/v1/review", headers=slt).json()
    assert queue[0]["media"]["id"] == str(media_id)


def test_the_sweep_recovers_a_medium_whose_message_was_lost(
    client: TestClient, celery_worker: None
) -> None:
    create_org("school", policy="arts-service")
    staff, slt = token("school", "staff"), token("school", "slt")
    key = f"originals/lost/{uuid.uuid4()}.jpg"
    runtime.store().put(key, _landscape())
    media_id = _insert_media("school", staff, key=key, minutes_ago=30)
    assert client.get(f"/api/v1/media/{media_id}", headers=slt).json()["status"] == "queued"
    sweep_stuck_media.delay()
    body = wait_screened(client, slt, str(media_id), timeout=180)
    assert body["status"] == "screened"
    assert body["faces"] == []


def test_primary_school_needs_slt_approval_before_publishing(
    client: TestClient, celery_worker: None
) -> None:
    create_org("primary", policy="primary-school")
    staff, slt = token("primary", "staff"), token("primary", "slt")
    publisher = token("primary", "publisher")
    r = client.post("/api/v1/media", headers=staff,
                    data={"event": "Harvest festival", "purpose": "publicity", "device": "school"},
                    files={"file": ("stage.jpg", _landscape())})
    media_id = r.json()["id"]
    body = wait_screened(client, slt, media_id, timeout=180)
    assert body["status"] == "screened"
    assert body["faces"] == []
    website = body["channels"]["website"]
    assert website["allowed"] is False
    assert website["reasons"] == [
        "SLT approval for School website is required and has not been given"]
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": "website"})
    assert r.status_code == 409
    # Staff cannot approve; SLT can, with a written justification.
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=staff,
                    json={"channels": ["website"], "justification": "Looks fine to me"})
    assert r.status_code == 403
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=slt,
                    json={"channels": ["website"], "justification": "ok"})
    assert r.status_code == 422
    r = client.post(f"/api/v1/media/{media_id}/approvals", headers=slt,
                    json={"channels": ["website"],
                          "justification": "Stage set only, no pupils visible; fine for the site"})
    assert r.status_code == 201
    assert r.json()["channels"]["website"]["allowed"] is True
    assert r.json()["channels"]["newsletter"]["allowed"] is False
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": "website"})
    assert r.status_code == 201
    from sqlalchemy import text

    with runtime.sessions()() as session:
        details = session.execute(
            text("SELECT details FROM audit_events WHERE action = 'review.approved'")
        ).scalar_one()
    assert "Stage set only" in details["justification"]
