"""The CLI as the README documents it, on a fresh embedded data directory."""

from __future__ import annotations

import json
import os
import signal
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


def _first_steps_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First steps with the embedded default", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_first_steps_run_as_written_on_a_fresh_checkout(tmp_path: Path) -> None:
    """The block is run by bash in a fresh project folder (the repository's files
    linked in, a data directory that does not exist yet), with two changes: port 8000
    may be taken on a shared machine, so a free port stands in for it; and `make run &`
    is replaced by the command the README gives beside it, because make's setup step,
    run from a second folder, would re-sync the virtualenv the tests are running in."""
    faces = ROOT.parent / "shared" / "faces"
    project = tmp_path / "work" / "consentgate"
    project.mkdir(parents=True)
    for name in ("policies", "services", "models", "storage", "workers", ".venv"):
        (project / name).symlink_to(ROOT / name)
    (tmp_path / "work" / "shared").symlink_to(faces.parent)
    port = str(free_port())
    block = _first_steps_block()
    serve = ".venv/bin/consentgate serve --data-dir ./consentgate-data --port 8000"
    assert block.startswith("make run &") and serve in block
    script = (serve + " &" + block.removeprefix("make run &")).replace("8000", port)
    script += 'echo\necho "SLT=$SLT"\n'
    env = embedded_env(tmp_path / "unused")
    del env["CONSENTGATE_DATA_DIR"]
    # Files, not pipes: the server started in the background keeps them open.
    with (tmp_path / "out").open("w") as stdout, (tmp_path / "err").open("w") as stderr:
        proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=project, env=env,
                                stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            proc.wait(timeout=240)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert proc.returncode == 0, err[-3000:]
    # The server shares stdout and may print (e.g. "worker: Warm shutdown") after the
    # script's own lines, so find them by what they are, not by position.
    lines = out.strip().splitlines()
    upload = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    assert upload["status"] == "queued", out
    assert any(line.startswith("SLT=cg_") for line in lines), out
    assert (project / "consentgate-data" / "consentgate.db").is_file()
