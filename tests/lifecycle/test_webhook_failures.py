"""A takedown notice the pipeline never accepts is retried with backoff, every attempt is
recorded, and when the attempts run out it stays listed as failed for SLT."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from services.core import runtime
from tests.lifecycle.support import eventually, landscape, publish, upload_bytes, webhook_receiver
from tests.support import create_org, run_cli, token, wait_screened


def test_a_delivery_that_keeps_failing_is_retried_then_listed_as_failed(
    client: TestClient, celery_worker: None
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    with webhook_receiver("school", status=503) as receiver:
        media_id = upload_bytes(client, staff, landscape())
        wait_screened(client, slt, media_id)
        url = publish(client, publisher, media_id)["url"]
        r = client.delete(f"/api/v1/media/{media_id}/publications/website", headers=publisher)
        assert r.status_code == 200

        def failed() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = client.get(
                "/api/v1/webhook-deliveries", headers=slt, params={"failed": "true"}).json()
            return rows

        rows = eventually(failed, "the delivery to fail for good")
        assert len(rows) == 1
        delivery = rows[0]
        # CONSENTGATE_WEBHOOK_MAX_ATTEMPTS is 3 in the test settings.
        assert delivery["attempts"] == 3
        assert [a["number"] for a in delivery["attempt_log"]] == [1, 2, 3]
        assert {a["status_code"] for a in delivery["attempt_log"]} == {503}
        assert "503" in delivery["last_error"]
        assert delivery["next_attempt_at"] is None
        # Each attempt waited longer than the one before (0.2 s, then 0.4 s).
        at = [a["at"] for a in delivery["attempt_log"]]
        assert at == sorted(at)
        # The receiver saw the same signed notice three times, one delivery id.
        notices = receiver.received()
        assert len(notices) == 3
        assert all(n.signature_ok for n in notices)
        assert len({n.body for n in notices}) == 1
        assert {n.headers["X-ConsentGate-Delivery"] for n in notices} == {delivery["id"]}
        assert len({n.headers["X-ConsentGate-Timestamp"] for n in notices}) >= 1
        # The feed still lists the takedown, for a pipeline that polls.
        feed = client.get("/api/v1/takedowns", headers=publisher).json()
        assert [t["url"] for t in feed] == [url]

    with runtime.sessions()() as session:
        failed_events = session.execute(text(
            "SELECT count(*) FROM audit_events WHERE action = 'webhook.delivery_failed'"
        )).scalar_one()
    assert failed_events == 1


def test_a_notice_signed_with_an_old_secret_is_refused_by_the_receiver(
    client: TestClient, celery_worker: None
) -> None:
    """Configuring the webhook again rotates the secret; a receiver still holding the old
    one refuses the notice, and the delivery is not counted as delivered."""
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    with webhook_receiver("school") as receiver:
        old_secret = receiver.secret
        new_secret = run_cli("org", "webhook", "school", "--url", receiver.url)
        assert new_secret.strip().splitlines()[-1] != old_secret
        media_id = upload_bytes(client, staff, landscape())
        wait_screened(client, slt, media_id)
        publish(client, publisher, media_id)
        client.delete(f"/api/v1/media/{media_id}/publications/website", headers=publisher)
        rows = eventually(lambda: client.get("/api/v1/webhook-deliveries?failed=true",
                                             headers=slt).json(), "the refused delivery")
        assert {a["status_code"] for a in rows[0]["attempt_log"]} == {401}
        assert not any(n.signature_ok for n in receiver.received())


def test_webhook_command_needs_a_valid_url(client: TestClient) -> None:
    from click.testing import CliRunner

    from services.cli import main as cli

    create_org("school")
    result = CliRunner().invoke(cli, ["org", "webhook", "school", "--url", "ftp://x"])
    assert result.exit_code != 0
    assert "http" in result.output
    run_cli("org", "webhook", "school", "--url", "https://pipeline.example/hooks")
    assert "webhook removed" in run_cli("org", "webhook", "school", "--remove")
    assert "no webhook was configured" in run_cli("org", "webhook", "school", "--remove")
