"""Withdrawal and expiry of publication consent: every affected publication comes down,
and the publishing pipeline hears of it by a signed webhook and by the takedown feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from models.clock import utcnow
from services.core import runtime
from tests.flow import put_consent, upload
from tests.lifecycle.support import enrol, eventually, publish, webhook_receiver
from tests.support import create_org, token, wait_screened
from workers.lifecycle.tasks import recheck_publications


def _pub_id(url: str) -> str:
    return url.rsplit("/", 1)[-1].split(".")[0]


def test_withdrawal_takes_down_every_publication_and_tells_the_pipeline(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    with webhook_receiver("school") as receiver:
        obama = enrol(client, slt, faces, "obama", 1, channels=("website", "newsletter"))
        kit = enrol(client, slt, faces, "kit_harington", 2)
        media = {name: upload(client, staff, faces / "events" / name)
                 for name in ("obama1.jpg", "obama-720p.jpg", "johnsnow_test1.jpg")}
        for name, media_id in media.items():
            body = wait_screened(client, slt, media_id)
            assert body["channels"]["website"]["allowed"], (name, body["channels"])
        urls = {
            "obama1 website": publish(client, publisher, media["obama1.jpg"])["url"],
            "obama1 newsletter": publish(client, publisher, media["obama1.jpg"],
                                         "newsletter")["url"],
            "obama720 website": publish(client, publisher, media["obama-720p.jpg"])["url"],
            "kit website": publish(client, publisher, media["johnsnow_test1.jpg"])["url"],
        }
        since = datetime.now(UTC) - timedelta(seconds=1)

        put_consent(client, slt, obama, "withdrawn", channel="website")

        # Every website publication showing this pupil is down at once...
        assert client.get(urls["obama1 website"]).status_code == 410
        assert client.get(urls["obama720 website"]).status_code == 410
        # ...and nothing else: other channels, other pupils.
        assert client.get(urls["obama1 newsletter"]).status_code == 200
        assert client.get(urls["kit website"]).status_code == 200
        taken = {_pub_id(urls["obama1 website"]), _pub_id(urls["obama720 website"])}
        with runtime.sessions()() as session:
            keys = session.execute(
                text("SELECT public_key FROM publications WHERE CAST(id AS TEXT) IN (:a, :b)"),
                dict(zip("ab", sorted(taken), strict=True)),
            ).scalars().all()
        assert len(keys) == 2
        for key in keys:
            assert runtime.store().count_versions(key) == 0

        # The feed lists exactly these takedowns...
        r = client.get("/api/v1/takedowns", headers=publisher,
                       params={"since": since.isoformat()})
        assert r.status_code == 200, r.text
        feed = r.json()
        assert {t["publication_id"] for t in feed} == taken
        assert all("withdrawn" in t["reason"] for t in feed)
        assert {t["url"] for t in feed} == {urls["obama1 website"], urls["obama720 website"]}

        # ...and the webhook announced the same ones, signed with the organisation's secret.
        notices = eventually(lambda: (n := receiver.received()) and len(n) >= 2 and n,
                             "two takedown webhooks")
        assert all(n.signature_ok for n in notices)
        assert {n.payload["publication_id"] for n in notices} == taken
        assert {n.payload["url"] for n in notices} == {t["url"] for t in feed}
        assert {n.headers["X-ConsentGate-Event"] for n in notices} == {"publication.taken_down"}

        def all_delivered() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = client.get("/api/v1/webhook-deliveries",
                                                       headers=slt).json()
            return rows if rows and all(d["status"] == "delivered" for d in rows) else None

        deliveries = eventually(all_delivered, "deliveries recorded as delivered")
        assert {d["publication_id"] for d in deliveries} == taken
        assert all(d["attempt_log"][0]["status_code"] == 200 for d in deliveries)
        assert client.get("/api/v1/webhook-deliveries?failed=true", headers=slt).json() == []
        assert client.get("/api/v1/webhook-deliveries", headers=publisher).status_code == 403
        assert client.get("/api/v1/takedowns", headers=staff).status_code == 403
        # The signing secret is never given back.
        assert receiver.secret not in str(deliveries)

        # Subject access: every medium the pupil was matched in, withdrawn publications too.
        r = client.get(f"/api/v1/pupils/{obama}/media", headers=slt)
        assert r.status_code == 200, r.text
        sar = r.json()
        assert {m["media_id"] for m in sar["media"]} == {media["obama1.jpg"],
                                                         media["obama-720p.jpg"]}
        pubs = {p["id"]: p for m in sar["media"] for p in m["publications"]}
        assert set(pubs) == taken | {_pub_id(urls["obama1 newsletter"])}
        assert all(pubs[p]["withdrawn_at"] for p in taken)
        assert pubs[_pub_id(urls["obama1 newsletter"])]["withdrawn_at"] is None
        kit_media = client.get(f"/api/v1/pupils/{kit}/media", headers=slt).json()["media"]
        assert [m["media_id"] for m in kit_media] == [media["johnsnow_test1.jpg"]]
        assert client.get(f"/api/v1/pupils/{obama}/media", headers=publisher).status_code == 403


def test_expired_consent_is_taken_down_by_the_periodic_check(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    with webhook_receiver("school") as receiver:
        pupil = enrol(client, slt, faces, "obama", 1, channels=())
        r = client.put(f"/api/v1/pupils/{pupil}/consents/website", headers=slt, json={
            "status": "granted", "given_by": "guardian", "evidence_ref": "form-2024",
            "expires_on": (utcnow().date() + timedelta(days=30)).isoformat()})
        assert r.status_code == 200, r.text
        media_id = upload(client, staff, faces / "events" / "obama1.jpg")
        assert wait_screened(client, slt, media_id)["channels"]["website"]["allowed"]
        url = publish(client, publisher, media_id)["url"]
        since = datetime.now(UTC)

        # Thirty-one days pass: the consent's expiry date is now yesterday. Nobody asks
        # anything of the API; the periodic job alone must notice.
        with runtime.sessions().begin() as session:
            session.execute(text("UPDATE publication_consents SET expires_on = :d"),
                            {"d": utcnow().date() - timedelta(days=1)})
        recheck_publications.delay()

        def taken_down() -> list[dict[str, object]]:
            feed: list[dict[str, object]] = client.get(
                "/api/v1/takedowns", headers=publisher,
                params={"since": since.isoformat()}).json()
            return feed

        feed = eventually(taken_down, "the periodic check to take the expired photo down")
        assert client.get(url).status_code == 410
        assert [t["publication_id"] for t in feed] == [_pub_id(url)]
        assert "expired" in feed[0]["reason"]
        notice = eventually(receiver.received, "the takedown webhook")[0]
        assert notice.signature_ok
        assert notice.payload["publication_id"] == _pub_id(url)


def test_a_grant_recorded_already_expired_takes_down_at_once(
    client: TestClient, celery_worker: None, faces: Path
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    pupil = enrol(client, slt, faces, "obama", 1)
    media_id = upload(client, staff, faces / "events" / "obama1.jpg")
    assert wait_screened(client, slt, media_id)["channels"]["website"]["allowed"]
    url = publish(client, publisher, media_id)["url"]
    r = client.put(f"/api/v1/pupils/{pupil}/consents/website", headers=slt, json={
        "status": "granted", "given_by": "guardian", "evidence_ref": "renewal typed wrongly",
        "expires_on": (utcnow().date() - timedelta(days=1)).isoformat()})
    assert r.status_code == 200
    assert client.get(url).status_code == 410
