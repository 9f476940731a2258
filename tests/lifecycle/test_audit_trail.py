"""The audit trail over a real lifecycle history: it verifies, it names the first event
that was altered afterwards, and it holds no secret and no face data."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import text

from models.clock import utcnow
from services.cli import main as cli
from services.core import runtime
from tests.flow import put_consent
from tests.lifecycle.support import (
    eventually,
    landscape,
    publish,
    upload_bytes,
    webhook_receiver,
)
from tests.support import create_org, run_cli, token, wait_screened

PUPIL = {"external_id": "UPN1", "given_name": "Sam", "family_name": "Hill", "year_group": "Y3"}


def test_audit_verify_on_a_lifecycle_history_then_after_tampering(
    client: TestClient, celery_worker: None
) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    long_ago = (utcnow().date() - timedelta(days=1000)).isoformat()
    with webhook_receiver("school") as receiver:
        pupil = client.post("/api/v1/pupils", headers=slt, json=PUPIL).json()["id"]
        for status, by in (("granted", "parent"), ("objected", "pupil")):
            r = client.post(f"/api/v1/pupils/{pupil}/biometric-consent", headers=slt,
                            json={"status": status, "by": by, "evidence_ref": "form"})
            assert r.status_code == 201
        put_consent(client, slt, pupil, "granted")
        put_consent(client, slt, pupil, "withdrawn")
        kept = upload_bytes(client, staff, landscape(1))
        expired = upload_bytes(client, staff, landscape(2), captured_on=long_ago)
        for media_id in (kept, expired):
            wait_screened(client, slt, media_id)
        publish(client, publisher, kept)
        publish(client, publisher, expired)
        r = client.delete(f"/api/v1/media/{kept}/publications/website", headers=publisher)
        assert r.status_code == 200
        hold = {"reason": "Complaint under investigation"}
        assert client.post(f"/api/v1/media/{expired}/legal-hold", headers=slt,
                           json=hold).status_code == 201
        assert "purged 0 media" in run_cli("purge")
        assert client.delete(f"/api/v1/media/{expired}/legal-hold",
                             headers=slt).status_code == 200
        assert "purged 1 media" in run_cli("purge")
        client.patch(f"/api/v1/pupils/{pupil}", headers=slt, json={"active": False})
        client.get(f"/api/v1/pupils/{pupil}/media", headers=slt)
        eventually(lambda: len(receiver.received()) >= 2, "both takedown webhooks")
        secret = receiver.secret

    with runtime.sessions()() as session:
        rows = session.execute(
            text("SELECT id, action, CAST(details AS TEXT) FROM audit_events ORDER BY id")
        ).all()
    actions = {r[1] for r in rows}
    assert {"webhook.configured", "biometric_consent.recorded", "consent.recorded",
            "media.uploaded", "media.screened", "publication.created",
            "publication.withdrawn", "legal_hold.set", "legal_hold.released", "media.purged",
            "pupil.active_changed", "subject_access.listed"} <= actions
    everything = " ".join(str(r) for r in rows)
    assert secret not in everything
    assert secret[len("whsec_"):][:16] not in everything

    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert f"intact: {len(rows)} events" in ok.output

    # Someone edits the purge record to hide how much was deleted.
    victim = next(r[0] for r in rows if r[1] == "media.purged")
    with runtime.sessions().begin() as session:
        details = session.execute(
            text("SELECT details FROM audit_events WHERE id = :i"), {"i": victim}
        ).scalar_one()
        details["object_versions_deleted"] = 0
        session.execute(
            text("UPDATE audit_events SET details = CAST(:d AS JSON) WHERE id = :i"),
            {"d": json.dumps(details), "i": victim},
        )
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at event {victim}" in broken.output
