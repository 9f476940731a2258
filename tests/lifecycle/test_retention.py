"""Retention purge: a medium past its retention date is deleted completely (every object
version of the original and of its published copies), its live publications come down
first with a webhook, a tombstone stays, and a legal hold stops all of it."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from models.clock import utcnow
from services.core import runtime
from tests.lifecycle.support import (
    eventually,
    landscape,
    publish,
    upload_bytes,
    webhook_receiver,
)
from tests.support import create_org, run_cli, token, wait_screened
from workers.lifecycle.tasks import purge_expired_media


def _keys(media_id: str) -> dict[str, Any]:
    with runtime.sessions()() as session:
        original = session.execute(
            text("SELECT original_key FROM media WHERE CAST(id AS TEXT) = :m"), {"m": media_id}
        ).scalar_one()
        published = session.execute(
            text("SELECT public_key FROM publications WHERE CAST(media_id AS TEXT) = :m"),
            {"m": media_id}).scalars().all()
    return {"original": original, "published": list(published)}


def _versions(keys: dict[str, Any]) -> int:
    store = runtime.store()
    return store.count_versions(keys["original"]) + sum(
        store.count_versions(k) for k in keys["published"])


def test_purge_deletes_every_version_keeps_a_tombstone_and_respects_legal_hold(
    client: TestClient, celery_worker: None
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    three_years_ago = (utcnow().date() - timedelta(days=3 * 365)).isoformat()
    with webhook_receiver("school") as receiver:
        pictures = {name: landscape(seed) for seed, name in enumerate(("old", "new", "held"))}
        old = upload_bytes(client, staff, pictures["old"], captured_on=three_years_ago)
        new = upload_bytes(client, staff, pictures["new"])
        held = upload_bytes(client, staff, pictures["held"], captured_on=three_years_ago)
        for media_id in (old, new, held):
            assert wait_screened(client, slt, media_id)["status"] == "screened"
        urls = [publish(client, publisher, old)["url"],
                publish(client, publisher, old, "newsletter")["url"]]
        # An SLT decision whose justification names a child must go with the photo.
        r = client.post(f"/api/v1/media/{old}/decisions", headers=slt, json={
            "kind": "approve", "channels": ["press"],
            "justification": "Sam Hill's parents asked for this one in the paper"})
        assert r.status_code == 201, r.text
        old_keys = _keys(old)
        # A second version of the original, as an overwrite on a versioned bucket leaves.
        runtime.store().put(old_keys["original"], pictures["old"] + b"\0")
        assert _versions(old_keys) == 4

        # Only SLT may hold, and only with a reason.
        hold = {"reason": "Open safeguarding case SG-14; keep until it is closed"}
        for who in (staff, publisher):
            r = client.post(f"/api/v1/media/{held}/legal-hold", headers=who, json=hold)
            assert r.status_code == 403
        r = client.post(f"/api/v1/media/{held}/legal-hold", headers=slt, json={"reason": ""})
        assert r.status_code == 422
        r = client.post(f"/api/v1/media/{held}/legal-hold", headers=slt, json=hold)
        assert r.status_code == 201, r.text
        assert r.json()["set_by"] == "slt:slt"
        r = client.post(f"/api/v1/media/{held}/legal-hold", headers=slt, json=hold)
        assert r.status_code == 409

        # A dry run lists and deletes nothing.
        listed = run_cli("purge", "--dry-run")
        assert f"would purge\t{old}" in listed
        assert f"on legal hold, kept\t{held}" in listed
        assert new not in listed
        assert _versions(old_keys) == 4
        assert client.get(f"/api/v1/media/{old}", headers=slt).status_code == 200

        out = run_cli("purge")
        assert "purged 1 media" in out

        # Nothing of the photo is left in any version, and the public copies are gone.
        assert _versions(old_keys) == 0
        for url in urls:
            assert client.get(url).status_code == 410
        # The tombstone answers for it, without the event text or the uploader.
        r = client.get(f"/api/v1/media/{old}", headers=slt)
        assert r.status_code == 410
        body = r.json()
        tombstone = body["tombstone"]
        assert tombstone["media_id"] == old
        assert tombstone["sha256"] == hashlib.sha256(pictures["old"]).hexdigest()
        assert tombstone["captured_on"] == three_years_ago
        assert "retention" in tombstone["reason"]
        assert "Summer concert" not in r.text and "staff" not in r.text
        with runtime.sessions()() as session:
            row = session.execute(text(
                "SELECT event, purpose, uploader_name, status FROM media "
                "WHERE CAST(id AS TEXT) = :m"), {"m": old}).one()
            faces, decisions, approvals = (
                session.execute(text(
                    f"SELECT count(*) FROM {table} WHERE CAST(media_id AS TEXT) = :m"),
                    {"m": old}).scalar_one()
                for table in ("faces", "review_decisions", "approvals")
            )
        assert tuple(row) == ("", "", "", "purged")
        assert (faces, decisions, approvals) == (0, 0, 0)
        listing = client.get("/api/v1/media", headers=slt).json()
        assert old not in {m["id"] for m in listing}
        r = client.post(f"/api/v1/media/{old}/publications", headers=publisher,
                        json={"channel": "website"})
        assert r.status_code == 410

        # Its publications came down first, and the pipeline was told.
        feed = client.get("/api/v1/takedowns", headers=publisher).json()
        assert {t["url"] for t in feed} == set(urls)
        assert all(t["reason"].startswith("retention purge") for t in feed)
        notices = eventually(lambda: (n := receiver.received()) and len(n) >= 2 and n,
                             "two takedown webhooks")
        assert all(n.signature_ok for n in notices)
        assert {n.payload["url"] for n in notices} == set(urls)

        # The held medium and the one still within retention are untouched.
        held_keys = _keys(held)
        assert runtime.store().count_versions(held_keys["original"]) == 1
        assert client.get(f"/api/v1/media/{held}", headers=slt).status_code == 200
        assert client.get(f"/api/v1/media/{new}", headers=slt).status_code == 200

        # Releasing the hold lets the periodic job purge it.
        r = client.delete(f"/api/v1/media/{held}/legal-hold", headers=staff)
        assert r.status_code == 403
        r = client.delete(f"/api/v1/media/{held}/legal-hold", headers=slt,
                          params={"reason": "SG-14 closed"})
        assert r.status_code == 200, r.text
        assert r.json()["released_by"] == "slt:slt"
        history = client.get(f"/api/v1/media/{held}/legal-hold", headers=slt).json()
        assert history["active"] is None and len(history["history"]) == 1
        purge_expired_media.delay()
        eventually(lambda: client.get(f"/api/v1/media/{held}", headers=slt).status_code == 410,
                   "the released medium to be purged")
        assert runtime.store().count_versions(held_keys["original"]) == 0
        assert client.get(f"/api/v1/media/{new}", headers=slt).status_code == 200

        r = client.post(f"/api/v1/media/{old}/legal-hold", headers=slt, json=hold)
        assert r.status_code == 410

    with runtime.sessions()() as session:
        actions = session.execute(text(
            "SELECT action, details FROM audit_events WHERE action LIKE 'legal_hold.%' "
            "OR action = 'media.purged' ORDER BY id")).all()
    assert [a for a, _ in actions] == ["legal_hold.set", "media.purged", "legal_hold.released",
                                       "media.purged"]
    assert actions[0][1]["reason"] == hold["reason"]
    assert actions[1][1]["object_versions_deleted"] == 4


def test_purging_twice_changes_nothing(client: TestClient, celery_worker: None) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    long_ago = (utcnow().date() - timedelta(days=800)).isoformat()
    media_id = upload_bytes(client, staff, landscape(), captured_on=long_ago)
    wait_screened(client, slt, media_id)
    assert "purged 1 media" in run_cli("purge")
    first = client.get(f"/api/v1/media/{media_id}", headers=slt).json()
    assert "purged 0 media" in run_cli("purge")
    assert "0 media would be purged" in run_cli("purge", "--dry-run")
    assert client.get(f"/api/v1/media/{media_id}", headers=slt).json() == first
