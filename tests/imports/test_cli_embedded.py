"""The import and key commands on the embedded backend (SQLite, filesystem store), as a
school without PostgreSQL would run them."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from tests.imports.support import make_csv, make_upn
from tests.support import CLI, ROOT, embedded_env


def _run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_import_pupils_photos_and_keys_on_the_embedded_backend(tmp_path: Path,
                                                               faces: Path) -> None:
    env = embedded_env(tmp_path / "data")
    _run(env, "org", "create", "school", "--name", "School")
    csv_path = tmp_path / "sims.csv"
    csv_path.write_bytes(make_csv("sims", range(600)))

    dry = _run(env, "import", "pupils", "--org", "school", str(csv_path), "--dry-run")
    assert "600 created" in dry.stdout and "dry run" in dry.stdout
    db = sqlite3.connect(tmp_path / "data" / "consentgate.db")
    assert db.execute("SELECT count(*) FROM pupils").fetchone()[0] == 0

    done = _run(env, "import", "pupils", "--org", "school", str(csv_path))
    assert "600 rows (sims format): 600 created, 0 updated, 0 unchanged, 0 left" in done.stdout
    assert "checking rows" in done.stderr  # the progress bar
    assert db.execute("SELECT count(*) FROM pupils").fetchone()[0] == 600
    again = _run(env, "import", "pupils", "--org", "school", str(csv_path))
    assert "0 created, 0 updated, 600 unchanged" in again.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(make_csv("sims", range(5), overrides={2: {"website": "maybe"}}))
    failed = _run(env, "import", "pupils", "--org", "school", str(bad), ok=False)
    assert failed.returncode != 0
    assert "row 4, column Website" in failed.stderr and "nothing was imported" in failed.stderr

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(faces / "enrol" / "obama" / "obama_a.jpg", photos / f"{make_upn(0)}.jpg")
    shutil.copy(faces / "enrol" / "biden" / "biden_a.jpg", photos / f"{make_upn(1)}.jpg")
    out = _run(env, "import", "photos", "--org", "school", str(photos))
    assert f"{make_upn(0)}.jpg\tenrolled" in out.stdout
    assert f"{make_upn(1)}.jpg\trefused\tno biometric consent" in out.stdout
    assert "1 enrolled, 1 refused" in out.stdout

    # --sync: pupil 0 leaves, and their template goes.
    csv_path.write_bytes(make_csv("sims", range(1, 600)))
    synced = _run(env, "import", "pupils", "--org", "school", str(csv_path), "--sync")
    assert "1 left" in synced.stdout
    assert db.execute("SELECT count(*) FROM face_templates").fetchone()[0] == 0

    secret = _run(env, "token", "create", "--org", "school", "--role", "slt", "--name",
                  "Deputy", "--expires-in", "90d").stdout.strip().splitlines()[-1]
    assert secret.startswith("cg_")
    listed = _run(env, "token", "list", "--org", "school").stdout.strip().splitlines()
    token_id, role, name, _created, expiry, state = listed[0].split("\t")
    assert (role, name, state) == ("slt", "Deputy", "active") and expiry.startswith("expires ")
    assert "revoked key" in _run(env, "token", "revoke", token_id).stdout
    assert _run(env, "token", "list", "--org", "school").stdout.split("\t")[-1].startswith(
        "revoked ")
    assert "intact" in _run(env, "audit", "verify").stdout
