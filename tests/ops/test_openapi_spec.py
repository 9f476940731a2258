"""The OpenAPI document against what the API really answers: a flow of real requests
(the worker screening real photos), each answer checked against the schema documented for
its path, method and status, error answers included. An answer whose status is not
documented fails the test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from models.clock import utcnow
from services.core import runtime
from storage.minio_store import MinioStore
from tests.flow import put_consent
from tests.lifecycle.support import enrol, landscape
from tests.s3server import make_test_client
from tests.support import create_org, run_cli, token, wait_screened


class SpecClient:
    """Sends requests through the TestClient and checks every answer against the spec."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.spec: dict[str, Any] = client.get("/openapi.json").json()
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in self.spec["paths"]
        ]
        # Most specific first: /media/{id}/picture.jpg before /media/{id}.
        self.routes.sort(key=lambda r: -len(r[1]))
        self.seen: set[tuple[str, str, str]] = set()

    def _template(self, url: str) -> str:
        path = url.split("?")[0]
        for pattern, template in self.routes:
            if pattern.match(path):
                return template
        raise AssertionError(f"{path} is not in the OpenAPI document")

    def check(self, method: str, url: str, r: Response) -> Response:
        template = self._template(url)
        op = self.spec["paths"][template].get(method.lower())
        assert op is not None, f"{method} {template} is not documented"
        status = str(r.status_code)
        documented = op["responses"]
        assert status in documented, (
            f"{method} {template} answered {status}, documented: {sorted(documented)}: "
            f"{r.text[:300]}")
        content = documented[status].get("content", {})
        kind = r.headers.get("content-type", "").split(";")[0]
        if kind == "application/json":
            assert "application/json" in content, f"{method} {template} {status}: JSON?"
            schema = {**content["application/json"]["schema"],
                      "components": self.spec["components"]}
            errors = sorted(Draft202012Validator(schema).iter_errors(r.json()),
                            key=lambda e: list(e.path))
            assert not errors, (f"{method} {template} {status}: "
                                + "; ".join(f"{list(e.path)}: {e.message}"
                                            for e in errors[:5]))
        else:
            assert kind in content, f"{method} {template} {status}: {kind} not documented"
        self.seen.add((method.upper(), template, status))
        return r

    def _send(self, method: str, url: str, **kw: Any) -> Response:
        return self.check(method, url, self.client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> Response:
        return self._send("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Response:
        return self._send("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Response:
        return self._send("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> Response:
        return self._send("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> Response:
        return self._send("DELETE", url, **kw)


@contextmanager
def small_images(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A pixel limit a test picture can exceed (413 without a half-gigabyte upload)."""
    monkeypatch.setenv("CONSENTGATE_MAX_IMAGE_PIXELS", "100000")
    runtime.reset()
    try:
        yield
    finally:
        monkeypatch.delenv("CONSENTGATE_MAX_IMAGE_PIXELS")
        runtime.reset()


def test_the_document_is_valid_openapi_3_1_with_what_integrators_need(
        client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    validate_spec(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API token from `consentgate token create`."}
    ids = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            assert op.get("description"), f"{method} {path} has no description"
            # Ids are the route names: no generated path-and-method suffixes.
            assert not op["operationId"].endswith(f"_{method}"), op["operationId"]
            if path.startswith("/api/"):
                assert op["security"] == [{"bearer": []}]
                for code in ("401", "403", "503"):
                    ref = op["responses"][code]["content"]["application/json"]["schema"]
                    assert ref == {"$ref": "#/components/schemas/ErrorOut"}
    assert len(ids) == len(set(ids))
    assert "HTTPValidationError" not in json.dumps(spec)
    media = spec["components"]["schemas"]["MediaOut"]["properties"]
    assert media["status"] == {"$ref": "#/components/schemas/MediaStatus"}
    assert set(spec["components"]["schemas"]["MediaStatus"]["enum"]) >= {
        "queued", "screening", "screened", "needs_review", "failed", "purged"}
    hook = spec["webhooks"]["publication.taken_down"]["post"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TakedownNotice"}
    headers = {p["name"].lower() for p in hook["parameters"] if p["in"] == "header"}
    assert headers >= {"x-consentgate-signature", "x-consentgate-timestamp",
                       "x-consentgate-delivery", "x-consentgate-event"}


def test_real_answers_match_the_documented_schemas(
        client: TestClient, celery_worker: None, faces: Path, s3_endpoint: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = SpecClient(client)
    create_org("school", policy="arts-service")
    slt, staff = token("school", "slt"), token("school", "staff")
    publisher = token("school", "publisher")
    obama = enrol(client, slt, faces, "obama", 1)

    # The successful path: upload, screening, detail, publish, takedown feed.
    def upload(data: bytes, name: str, **form: str) -> Response:
        return api.post("/api/v1/media", headers=staff, files={"file": (name, data)},
                        data={"event": "Concert", "purpose": "publicity", "device": "school",
                              **form})

    photo = (faces / "events" / "obama1.jpg").read_bytes()
    mine = upload(photo, "obama1.jpg").json()["id"]
    stranger = upload((faces / "events" / "two_people.jpg").read_bytes(),
                      "two_people.jpg").json()["id"]
    long_ago = (utcnow().date() - timedelta(days=3 * 365)).isoformat()
    old = upload(landscape(), "stage.jpg", captured_on=long_ago).json()["id"]
    for media_id in (mine, stranger, old):
        wait_screened(client, slt, media_id)
    api.get(f"/api/v1/media/{mine}", headers=slt)
    api.get("/api/v1/media", headers=staff)
    api.get(f"/api/v1/pupils/{obama}", headers=slt)
    api.get("/api/v1/pupils", headers=slt)
    api.get(f"/api/v1/pupils/{obama}/consents", headers=slt)
    published = api.post(f"/api/v1/media/{mine}/publications", headers=publisher,
                         json={"channel": "website"})
    assert published.status_code == 201
    assert api.post(f"/api/v1/media/{mine}/publications", headers=publisher,
                    json={"channel": "website"}).status_code == 200
    assert api.get(published.json()["url"].removeprefix("http://testserver")
                   ).status_code == 200
    api.get("/api/v1/publications", headers=publisher)
    api.get("/api/v1/review", headers=slt)
    api.get(f"/api/v1/review/{stranger}", headers=slt)
    api.get(f"/api/v1/media/{stranger}/picture.jpg", headers=slt)
    api.get("/api/v1/rescreening", headers=slt)
    put_consent(api, slt, obama, "withdrawn")
    feed = api.get("/api/v1/takedowns", headers=publisher)
    assert [t["media_id"] for t in feed.json()] == [mine]
    api.get(f"/api/v1/pupils/{obama}/media", headers=slt)
    api.get(f"/api/v1/media/{old}/legal-hold", headers=slt)

    # The error answers, each with the one error shape.
    assert api.get("/api/v1/media").status_code == 401
    assert api.get("/api/v1/publications", headers=staff).status_code == 403
    assert api.get("/api/v1/media/00000000-0000-0000-0000-000000000000",
                   headers=slt).status_code == 404
    refused = api.post(f"/api/v1/media/{stranger}/publications", headers=publisher,
                       json={"channel": "website"})
    assert refused.status_code == 409
    assert refused.json()["reasons"] and refused.json()["reason_codes"]
    assert "purged 1 media" in run_cli("purge")
    assert api.get(f"/api/v1/media/{old}", headers=slt).status_code == 410
    with small_images(monkeypatch):
        assert upload(landscape(), "stage.jpg").status_code == 413
        # A reference photo over the limit is refused with the same shape (not a 500).
        r = api.post(f"/api/v1/pupils/{obama}/reference-photos", headers=slt,
                     files={"file": ("big.jpg", landscape())})
        assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
    assert upload(b"just some words, not a picture", "notes.txt").status_code == 415
    assert upload(b"\xff\xd8\xff\xe0" + b"\0" * 64, "broken.jpg").status_code == 422
    bad = api.post("/api/v1/pupils", headers=slt, json={"given_name": "A"})
    assert bad.status_code == 422 and bad.json()["errors"]
    client.app.dependency_overrides[runtime.store] = (  # type: ignore[attr-defined]
        lambda: MinioStore(make_test_client(s3_endpoint), "bucket-nobody-made"))
    try:
        assert upload(landscape(), "stage.jpg").status_code == 503
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]

    statuses = {status for _, _, status in api.seen}
    assert statuses >= {"200", "201", "202", "401", "403", "404", "409", "410", "413",
                        "415", "422", "503"}
