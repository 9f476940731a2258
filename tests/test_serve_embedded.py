"""`consentgate serve` on a fresh data directory serves the whole foundation flow over
real HTTP, with its embedded worker and no other process started by hand."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flow import run_foundation_story
from tests.support import POLICIES, ROOT

CLI = [sys.executable, "-m", "services.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _embedded_env(data_dir: Path) -> dict[str, str]:
    # Drop the suite's production settings: this is the out-of-the-box default.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    env["CONSENTGATE_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path / "data"
    env = _embedded_env(data_dir)
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
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
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:])
            time.sleep(0.3)
        yield base, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout


def test_serve_runs_the_foundation_flow_with_its_embedded_worker(
    served: tuple[str, dict[str, str]], faces: Path
) -> None:
    base, env = served
    _cli(env, "org", "create", "artforms", "--name", "ArtForms",
         "--policy", str(POLICIES / "arts-service.yaml"))

    def tok(role: str) -> dict[str, str]:
        secret = _cli(env, "token", "create", "--org", "artforms", "--role", role,
                      "--name", role).strip().splitlines()[-1]
        return {"Authorization": f"Bearer {secret}"}

    with httpx.Client(base_url=base, timeout=120) as http:
        run_foundation_story(http, slt=tok("slt"), staff=tok("staff"),
                             publisher=tok("publisher"), faces=faces)
    data_dir = Path(env["CONSENTGATE_DATA_DIR"])
    assert (data_dir / "consentgate.db").is_file()
    assert (data_dir / "broker.db").is_file()
    # Templates and reference photos are encrypted at rest.
    refs = list((data_dir / "objects" / "references").rglob("*"))
    photos = [p for p in refs if p.is_file()]
    assert photos
    assert all(not p.read_bytes().startswith(b"\xff\xd8") for p in photos)
