"""Migration 0002 on the embedded default: `consentgate migrate` on a fresh SQLite data
directory, and down to 0001 and up again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

LIFECYCLE_TABLES = {"webhook_endpoints", "webhook_deliveries", "webhook_attempts",
                    "legal_holds", "media_tombstones"}


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migrate_builds_the_lifecycle_tables_on_fresh_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    data_dir = tmp_path / "data"
    cli = [sys.executable, "-m", "services.cli", "--data-dir", str(data_dir)]
    out = subprocess.run([*cli, "migrate"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    db = data_dir / "consentgate.db"
    assert _tables(db) >= LIFECYCLE_TABLES

    from alembic import command

    from models.migrate import alembic_config, upgrade

    url = f"sqlite:///{db}"
    command.downgrade(alembic_config(url), "0001")
    assert not LIFECYCLE_TABLES & _tables(db)
    upgrade(url)
    assert _tables(db) >= LIFECYCLE_TABLES
