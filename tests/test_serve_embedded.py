"""`consentgate serve` on a fresh data directory serves the whole foundation flow over
real HTTP, with its embedded worker and no other process started by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flow import run_foundation_story
from tests.support import POLICIES, embedded_server, run_cli_in


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    with embedded_server(tmp_path) as server:
        yield server


def test_serve_runs_the_foundation_flow_with_its_embedded_worker(
    served: tuple[str, dict[str, str]], faces: Path
) -> None:
    base, env = served
    run_cli_in(env, "org", "create", "artforms", "--name", "ArtForms",
               "--policy", str(POLICIES / "arts-service.yaml"))

    def tok(role: str) -> dict[str, str]:
        secret = run_cli_in(env, "token", "create", "--org", "artforms", "--role", role,
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
