"""Re-enrolment on the embedded default (SQLite, filesystem store): migration 0010 builds
and drops the job table, and the CLI command runs against a fresh data directory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import POLICIES, ROOT


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    return subprocess.run([sys.executable, "-m", "services.cli", "--data-dir", str(data_dir),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_reenrol_on_fresh_sqlite_and_the_migration_reverses(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = _cli(data_dir, "org", "create", "school", "--name", "School", "--policy",
               str(POLICIES / "arts-service.yaml"))
    assert out.returncode == 0, out.stderr
    out = _cli(data_dir, "templates", "reenrol", "--org", "school")
    assert out.returncode == 0, out.stderr
    assert "done: 0 templates recomputed, 0 skipped, 0 erased" in out.stdout
    out = _cli(data_dir, "templates", "status", "--org", "school")
    assert "done, 0/0 (100%)" in out.stdout, out.stdout
    out = _cli(data_dir, "templates", "reenrol", "--org", "nowhere")
    assert out.returncode != 0 and "no organisation 'nowhere'" in out.stderr

    db = data_dir / "consentgate.db"
    assert "template_jobs" in _tables(db)
    from alembic import command

    from models.migrate import alembic_config, upgrade

    url = f"sqlite:///{db}"
    command.downgrade(alembic_config(url), "0004")
    assert "template_jobs" not in _tables(db)
    upgrade(url)
    assert "template_jobs" in _tables(db)
