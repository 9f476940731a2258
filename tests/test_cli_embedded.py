"""The CLI as the README documents it, on a fresh embedded data directory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.support import CLI, ROOT, embedded_env, free_port


def test_org_and_token_commands_work_on_a_fresh_data_dir_without_migrate_first(
        tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "unused")
    del env["CONSENTGATE_DATA_DIR"]
    data = tmp_path / "fresh"
    base = [*CLI, "--data-dir", str(data)]
    out = subprocess.run([*base, "org", "create", "st-marys", "--name", "St Mary's",
                          "--policy", str(ROOT / "policies" / "primary-school.yaml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*base, "token", "create", "--org", "st-marys", "--role", "slt",
                          "--name", "Head"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("cg_")


def test_serve_takes_data_dir_after_the_subcommand(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "unused")
    del env["CONSENTGATE_DATA_DIR"]
    data = tmp_path / "served"
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*CLI, "serve", "--data-dir", str(data), "--port", str(port),
                             "--no-worker"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "serve.log").read_text()[-2000:])
            time.sleep(0.3)
        assert (data / "consentgate.db").is_file()
        assert not (tmp_path / "consentgate-data").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=40)
        log.close()
