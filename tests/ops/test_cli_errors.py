"""CLI errors an administrator meets: one plain line, no traceback, unless --debug."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.fernet import Fernet

from tests.support import CLI, ROOT, embedded_env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_unreachable_database_is_one_line_and_debug_shows_the_traceback(
        tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")
    env.update({"CONSENTGATE_ENVIRONMENT": "production",
                "CONSENTGATE_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none",
                "CONSENTGATE_BROKER_URL": "redis://127.0.0.1:9/0",
                "CONSENTGATE_TEMPLATE_KEY": Fernet.generate_key().decode()})
    out = _cli(env, "token", "create", "--org", "school", "--role", "slt", "--name", "Head")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("Error: the database is not reachable")
    assert "--debug" in lines[0]
    debug = _cli(env, "--debug", "token", "create", "--org", "school", "--role", "slt",
                 "--name", "Head")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "OperationalError" in debug.stderr


def test_a_misconfigured_secret_is_one_line(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "data")
    env["CONSENTGATE_TEMPLATE_KEY"] = "changeme"
    out = _cli(env, "org", "list")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "Error: CONSENTGATE_TEMPLATE_KEY is a well-known default (run with --debug for "
        "the details)"], out.stderr


def test_json_logs_from_serve_and_its_worker(tmp_path: Path) -> None:
    import json
    import time

    import httpx

    from tests.support import free_port

    env = embedded_env(tmp_path / "data")
    env["CONSENTGATE_LOG_FORMAT"] = "json"
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2
                                 ).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            # The worker logs its start-up too ("ready" from Celery).
            deadline = time.monotonic() + 60
            while "celery" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(timeout=40)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = []
    for line in lines:
        if line.startswith("{"):
            entries.append(json.loads(line))
    loggers = {e["logger"] for e in entries}
    assert "uvicorn.access" in loggers, lines[:20]
    assert any(name.startswith("celery") for name in loggers), lines[:40]
    assert any("/healthz" in e["message"] for e in entries)
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
