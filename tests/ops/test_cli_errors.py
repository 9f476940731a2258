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
