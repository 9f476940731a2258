"""Migration 0003 on the embedded default: `consentgate migrate` on fresh SQLite builds the
review tables and the publications column; down to 0002 and up again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

REVIEW_TABLES = {"review_decisions", "web_sessions"}


def _schema(db: Path) -> tuple[set[str], set[str]]:
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        columns = {r[1] for r in conn.execute("PRAGMA table_info(publications)")}
    return tables, columns


def test_migrate_builds_the_review_schema_and_reverses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTGATE_")}
    data_dir = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "services.cli", "--data-dir", str(data_dir),
                          "migrate"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    db = data_dir / "consentgate.db"
    tables, columns = _schema(db)
    assert tables >= REVIEW_TABLES
    assert "blurred_faces" in columns

    from alembic import command

    from models.migrate import alembic_config, upgrade

    url = f"sqlite:///{db}"
    command.downgrade(alembic_config(url), "0002")
    tables, columns = _schema(db)
    assert not REVIEW_TABLES & tables
    assert "blurred_faces" not in columns and "withdrawn_reason" in columns
    upgrade(url)
    tables, columns = _schema(db)
    assert tables >= REVIEW_TABLES and "blurred_faces" in columns
