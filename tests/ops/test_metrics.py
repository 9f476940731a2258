"""/metrics after real activity: uploads screened by the real worker, a publish the gate
allows and one it refuses, a purge that takes a copy down, and a takedown webhook that
fails against a closed port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from models.clock import utcnow
from services.core import runtime
from tests.lifecycle.support import eventually, landscape, publish, upload_bytes
from tests.support import create_org, run_cli, token, wait_screened

TOKEN = "metrics-token-for-the-test-0123456789"


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CONSENTGATE_METRICS_TOKEN", TOKEN)
    runtime.reset()
    yield TOKEN
    monkeypatch.undo()
    runtime.reset()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_need_the_token_in_production(client: TestClient, metrics_token: str) -> None:
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")


def test_metrics_are_off_in_production_without_a_token(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 403
    assert "CONSENTGATE_METRICS_TOKEN" in r.json()["detail"]


def test_metrics_count_what_really_happened(
        client: TestClient, celery_worker: None, faces: Path, metrics_token: str) -> None:
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    # A receiver that is not there: every attempt fails, and the delivery is given up.
    run_cli("org", "webhook", "school", "--url", "http://127.0.0.1:9/hooks")
    long_ago = (utcnow().date() - timedelta(days=3 * 365)).isoformat()
    stage = upload_bytes(client, staff, landscape(), captured_on=long_ago)
    stranger = upload_bytes(client, staff, (faces / "events" / "obama1.jpg").read_bytes(),
                            name="obama1.jpg")
    assert wait_screened(client, slt, stage)["status"] == "screened"
    assert wait_screened(client, slt, stranger)["status"] == "needs_review"
    publish(client, publisher, stage)
    refused = client.post(f"/api/v1/media/{stranger}/publications", headers=publisher,
                          json={"channel": "website"})
    assert refused.status_code == 409
    codes = {c["code"] for c in refused.json()["reason_codes"]}
    assert "purged 1 media" in run_cli("purge")

    def given_up() -> list[Any]:
        rows: list[Any] = client.get("/api/v1/webhook-deliveries", headers=slt,
                                     params={"failed": "true"}).json()
        return rows
    eventually(given_up, "the takedown webhook to be given up")

    r = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert r.status_code == 200
    got = _samples(r.text)

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("consentgate_media", status="purged") == 1
    assert value("consentgate_media", status="needs_review") == 1
    assert value("consentgate_media", status="queued") == 0
    assert value("consentgate_queue_depth", queue="screening") == 0
    assert ("consentgate_queue_depth", (("queue", "outbox"),)) in got
    assert value("consentgate_screening_duration_seconds_count") == 2
    assert 0 < value("consentgate_screening_duration_seconds_sum") < 300
    assert value("consentgate_screening_duration_seconds_bucket", le="+Inf") == 2
    assert value("consentgate_screenings_total", status="screened") == 1
    assert value("consentgate_screenings_total", status="needs_review") == 1
    assert value("consentgate_publish_decisions_total", channel="website",
                 outcome="published") == 1
    assert value("consentgate_publish_decisions_total", channel="website",
                 outcome="refused") == 1
    assert codes and all(value("consentgate_refusals_total", reason=c) == 1 for c in codes)
    assert value("consentgate_takedowns_total", channel="website") == 1
    assert value("consentgate_webhook_failures_total") == 1
    assert value("consentgate_purges_total") == 1
    assert value("consentgate_purged_object_versions_total") >= 2

    # A second scrape reads on from where the first stopped: nothing counted twice.
    again = _samples(client.get("/metrics", headers={
        "Authorization": f"Bearer {metrics_token}"}).text)
    assert again[("consentgate_purges_total", ())] == 1
    assert again[("consentgate_screening_duration_seconds_count", ())] == 2
