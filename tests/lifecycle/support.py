"""Helpers for the lifecycle tests: a webhook receiver like a publishing pipeline would
run, polling until the background work has happened, and a face-free test picture."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.flow import put_consent
from tests.support import run_cli

T = TypeVar("T")


@dataclass
class Notice:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    """An HTTP endpoint that checks each notice's signature the way the README tells
    receivers to, and answers with `status` (401 for a bad signature)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.secret = ""
        self.notices: list[Notice] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = receiver.verify(self.headers.get("X-ConsentGate-Timestamp", ""),
                                     self.headers.get("X-ConsentGate-Signature", ""), body)
                with receiver._lock:
                    receiver.notices.append(Notice(dict(self.headers.items()), body, ok))
                self.send_response(receiver.status if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/consentgate"

    def verify(self, timestamp: str, header: str, body: bytes) -> bool:
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(header, f"sha256={expected}")

    def received(self) -> list[Notice]:
        with self._lock:
            return list(self.notices)


@contextmanager
def webhook_receiver(org: str, status: int = 200) -> Iterator[Receiver]:
    receiver = Receiver(status)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        out = run_cli("org", "webhook", org, "--url", receiver.url)
        receiver.secret = out.strip().splitlines()[-1]
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def eventually(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll until `check` returns something truthy: background work, not a timing claim."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def landscape(seed: int = 0) -> bytes:
    """A face-free picture (smooth gradients and blocks, like a photo of the stage set)."""
    h, w = 360, 480
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1)
    img[100 + seed * 10:200, 150:300] = (30, 90, 160)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def upload_bytes(client: TestClient, staff: dict[str, str], data: bytes, *,
                 captured_on: str | None = None, name: str = "stage.jpg",
                 event: str = "Summer concert with Year 5") -> str:
    form = {"event": event, "purpose": "publicity", "device": "school"}
    if captured_on:
        form["captured_on"] = captured_on
    r = client.post("/api/v1/media", headers=staff, data=form, files={"file": (name, data)})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def enrol(client: TestClient, slt: dict[str, str], faces: Path, identity: str, n: int,
          channels: tuple[str, ...] = ("website",)) -> str:
    """One pupil with parental biometric consent, their reference photos and consent for
    `channels`."""
    given, _, family = identity.replace("_", " ").title().partition(" ")
    r = client.post("/api/v1/pupils", headers=slt, json={
        "external_id": f"UPN{n:04d}", "given_name": given, "family_name": family or given,
        "year_group": "Year 5"})
    assert r.status_code == 201, r.text
    pupil_id: str = r.json()["id"]
    r = client.post(f"/api/v1/pupils/{pupil_id}/biometric-consent", headers=slt,
                    json={"status": "granted", "by": "parent", "evidence_ref": f"form-{n}"})
    assert r.status_code == 201, r.text
    for photo in sorted((faces / "enrol" / identity).iterdir()):
        r = client.post(f"/api/v1/pupils/{pupil_id}/reference-photos", headers=slt,
                        files={"file": (photo.name, photo.read_bytes())})
        assert r.status_code == 201, f"{photo}: {r.text}"
    # Both example policies need consent to being photographed at all.
    for channel in ("capture", *channels):
        put_consent(client, slt, pupil_id, "granted", channel=channel)
    return pupil_id


def publish(client: TestClient, publisher: dict[str, str], media_id: str,
            channel: str = "website") -> dict[str, Any]:
    r = client.post(f"/api/v1/media/{media_id}/publications", headers=publisher,
                    json={"channel": channel})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
