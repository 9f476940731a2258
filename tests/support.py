"""Helpers for driving ConsentGate the way its users do: CLI for set-up, HTTP for the rest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx
from click.testing import CliRunner

from services.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
CLI = [sys.executable, "-m", "services.cli"]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The out-of-the-box settings: the suite's production CONSENTGATE_* values dropped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    env["CONSENTGATE_DATA_DIR"] = str(data_dir)
    return env


@contextmanager
def embedded_server(tmp: Path, extra_env: dict[str, str] | None = None,
                    ) -> Iterator[tuple[str, dict[str, str]]]:
    """`consentgate serve` on a fresh data directory under tmp; yields (base URL, env).
    `extra_env` adds settings (CONSENTGATE_*) for the server and the CLI."""
    env = {**embedded_env(tmp / "data"), **(extra_env or {})}
    port = free_port()
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()[-3000:])
                time.sleep(0.3)
            yield base, env
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_cli_in(env: dict[str, str], *args: str) -> str:
    """The CLI as a separate process with its own settings (for a served data dir)."""
    out = subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout
