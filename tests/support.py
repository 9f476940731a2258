"""Helpers for driving ConsentGate the way its users do: CLI for set-up, HTTP for the rest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from click.testing import CliRunner

from services.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


class Http(Protocol):
    def get(self, url: str, **kw: Any) -> Any: ...
    def post(self, url: str, **kw: Any) -> Any: ...
    def put(self, url: str, **kw: Any) -> Any: ...
    def delete(self, url: str, **kw: Any) -> Any: ...


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def create_org(slug: str, policy: str = "arts-service") -> None:
    run_cli("org", "create", slug, "--name", slug.title(), "--policy",
            str(POLICIES / f"{policy}.yaml"))


def token(org: str, role: str, name: str | None = None) -> dict[str, str]:
    out = run_cli("token", "create", "--org", org, "--role", role, "--name", name or role)
    secret = out.strip().splitlines()[-1]
    return {"Authorization": f"Bearer {secret}"}


def wait_screened(http: Http, headers: dict[str, str], media_id: str,
                  timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(f"/api/v1/media/{media_id}", headers=headers).json()
        if body["status"] not in ("queued", "screening"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"media {media_id} still {body['status']} after {timeout}s")
        time.sleep(0.3)
