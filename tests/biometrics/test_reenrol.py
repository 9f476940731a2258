"""Re-enrolment: every template recomputed from its stored reference photo with the
current settings, as a background job with progress; only under current biometric
consent; idempotent and resumable; media screened before are screened again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from models.db import transaction
from models.repositories.templates import TemplateJobRepository
from services.biometrics import reenrol
from services.biometrics.templates import decrypt_template
from services.core import outbox, runtime
from services.core.audit import SystemActor
from services.core.config import get_settings
from tests.biometrics.support import (
    as_uuid,
    audit_actions,
    bearer,
    epochs,
    pupil,
    secret,
    sql,
    template_rows,
    wait_rescreened,
)
from tests.flow import upload
from tests.support import create_org, run_cli, wait_screened
from workers.engine.engine import EngineConfig, FaceEngine
from workers.engine.imaging import decode_image


@pytest.fixture
def jitters(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set CONSENTGATE_ENROL_JITTERS for the app, the worker and the test alike."""

    def use(n: int) -> None:
        monkeypatch.setenv("CONSENTGATE_ENROL_JITTERS", str(n))
        get_settings.cache_clear()

    yield use
    monkeypatch.delenv("CONSENTGATE_ENROL_JITTERS", raising=False)
    get_settings.cache_clear()


def _exact(faces: Path, rel: str) -> np.ndarray[Any, Any]:
    """The template face_recognition itself makes (num_jitters=1: deterministic)."""
    rgb = decode_image((faces / "enrol" / rel).read_bytes(), max_pixels=100_000_000)
    return np.asarray(FaceEngine(EngineConfig()).reference_template(rgb))


def _encodings(pupil_id: str) -> dict[str, np.ndarray[Any, Any]]:
    settings = get_settings()
    return {ref: decrypt_template(settings, ct) for ref, ct in template_rows(pupil_id)}


def _org_id() -> Any:
    (row,) = sql("SELECT id FROM organisations WHERE slug = 'school'")
    return row[0]


def test_reenrolment_over_the_api_recomputes_templates_and_rescreens(
    client: TestClient, celery_worker: None, faces: Path, jitters: Any,
) -> None:
    create_org("school")
    slt, staff = bearer(secret("school", "slt")), bearer(secret("school", "staff"))
    jitters(1)  # templates made before the setting existed
    obama = pupil(client, slt, faces, "obama", ["obama_a.jpg", "obama_b.jpg"], 1)
    biden = pupil(client, slt, faces, "biden", ["biden_b.jpg"], 2)
    before = {**_encodings(obama), **_encodings(biden)}
    assert len(before) == 3
    exact = {_exact(faces, "obama/obama_a.jpg").tobytes(),
             _exact(faces, "obama/obama_b.jpg").tobytes(),
             _exact(faces, "biden/biden_b.jpg").tobytes()}
    assert {e.tobytes() for e in before.values()} == exact
    photo = upload(client, staff, faces / "events" / "obama1.jpg")
    assert [f["pupil_id"] for f in wait_screened(client, slt, photo)["faces"]] == [obama]
    match_epoch, _ = epochs()

    jitters(10)
    assert client.get("/api/v1/biometrics/reenrol", headers=slt).json() == {"job": None}
    r = client.post("/api/v1/biometrics/reenrol", headers=staff)
    assert r.status_code == 403, r.text
    r = client.post("/api/v1/biometrics/reenrol", headers=slt)
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["total"] == 3 and started["jitters"] == 10
    assert started["requested_by"] == "slt:slt"

    deadline = time.monotonic() + 300
    while True:
        job = client.get("/api/v1/biometrics/reenrol", headers=slt).json()["job"]
        assert job["job_id"] == started["job_id"]
        assert 0 <= job["fraction"] <= 1
        if job["status"] != "running":
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "done", job
    assert (job["done"], job["skipped"], job["erased"], job["fraction"]) == (3, 0, 0, 1.0)
    assert job["finished_at"] is not None

    after = {**_encodings(obama), **_encodings(biden)}
    # The same reference photos, each with a new template: the jittered mean is not the
    # single-pass descriptor, but it describes the same face.
    assert after.keys() == before.keys()
    for ref, old in before.items():
        assert not np.array_equal(after[ref], old)
        # About 0.1 away (the jittered copies include mirror images), far inside the
        # match threshold, and nearer its own photo's old template than any other.
        moved = float(np.linalg.norm(after[ref] - old))
        assert 0 < moved < 0.2
        assert min(before, key=lambda r: float(np.linalg.norm(after[ref] - before[r]))) == ref
    assert epochs()[0] > match_epoch
    actions = audit_actions()
    for action in ("templates.reenrol_started", "templates.reenrolled",
                   "templates.reenrol_finished"):
        assert action in actions

    # The photo screened against the old templates is screened again, and still Obama.
    wait_rescreened(photo)
    assert [f["pupil_id"] for f in client.get(f"/api/v1/media/{photo}",
                                              headers=slt).json()["faces"]] == [obama]


def test_reenrolment_resumes_after_a_crash_and_erases_templates_without_consent(
    client: TestClient, faces: Path,
) -> None:
    create_org("school")
    slt = bearer(secret("school", "slt"))
    obama = pupil(client, slt, faces, "obama", ["obama_a.jpg", "obama_b.jpg"], 1)
    kit = pupil(client, slt, faces, "kit_harington", ["kit_a.jpg", "kit_b.jpg"], 2)
    original = dict(template_rows(obama))
    # A state that must never last: templates of a pupil whose parent has withdrawn
    # consent (written behind the register's back, which would have erased them).
    sql_exec("INSERT INTO biometric_consents (pupil_id, status, by, evidence_ref, "
             "recorded_by, recorded_at) VALUES (:p, 'withdrawn', 'parent', 'letter', "
             "'test', now())", p=kit)
    assert len(template_rows(kit)) == 2
    org_id = _org_id()
    references = f"references/{org_id}/{kit}"
    assert runtime.store().count_versions(references) >= 2

    settings = get_settings().model_copy(update={"reenrol_batch": 1})
    cli = SystemActor("cli", org_id)
    with transaction(runtime.sessions()) as session:
        first, created = reenrol.start(session, settings, cli, org_id, send=False)
    with transaction(runtime.sessions()) as session:
        again, created_again = reenrol.start(session, settings, cli, org_id, send=False)
    assert created and not created_again and again.job_id == first.job_id
    assert first.total == 4

    class Crash(Exception):
        pass

    def crash(_: reenrol.ReenrolProgress) -> None:
        raise Crash

    with pytest.raises(Crash):
        reenrol.run(runtime.sessions(), runtime.store(), settings, first.job_id,
                    on_progress=crash)
    with transaction(runtime.sessions(), write=False) as session:
        row = reenrol_job(session, first.job_id)
        job, first_photo = reenrol.progress_of(row), str(row.last_photo_id)
    # The first batch (one photo; both of Kit's if it was his) was committed before the
    # crash.
    assert job.status == "running"
    assert (job.done, job.erased) in ((1, 0), (0, 2))
    kept = dict(template_rows(obama))

    seen: list[int] = []
    final = reenrol.run(runtime.sessions(), runtime.store(), settings, first.job_id,
                        on_progress=lambda p: seen.append(p.handled))
    assert final.status == "done"
    assert (final.done, final.skipped, final.erased, final.total) == (2, 0, 2, 4)
    # One batch at a time (Kit's second photo goes with his first), then finished.
    assert seen[-1] == 4 and seen == sorted(seen) and len(seen) in (3, 4)
    assert seen[0] == job.handled + 1 or seen[0] == job.handled + 2
    # Kit's consent had ended: no template comes back, and his photos go.
    assert template_rows(kit) == []
    assert sql("SELECT id FROM reference_photos WHERE CAST(pupil_id AS TEXT) = :p",
               p=kit) == []
    outbox.run_items(runtime.sessions(), runtime.store())
    assert runtime.store().count_versions(references) == 0
    # Obama's two templates were recomputed once each: the photo done before the crash
    # was not done again.
    now = dict(template_rows(obama))
    assert now.keys() == original.keys()
    assert all(now[ref] != original[ref] for ref in now)
    if first_photo in now:
        assert now[first_photo] == kept[first_photo] != original[first_photo]
    # Running a finished job again changes nothing.
    assert reenrol.run(runtime.sessions(), runtime.store(), settings, first.job_id) == final
    assert dict(template_rows(obama)) == now
    assert "biometrics.erased" in audit_actions()


def test_cli_reenrols_with_a_progress_bar(client: TestClient, faces: Path) -> None:
    create_org("school")
    slt = bearer(secret("school", "slt"))
    alex = pupil(client, slt, faces, "alex_lacamoire", ["alex_a.jpg"], 1)
    (old,) = template_rows(alex)
    out = run_cli("templates", "reenrol", "--org", "school")
    assert "re-enrolling" in out
    assert "done: 1 templates recomputed, 0 skipped, 0 erased" in out
    (new,) = template_rows(alex)
    assert new[0] == old[0] and new[1] != old[1]
    status = run_cli("templates", "status", "--org", "school")
    assert "done, 1/1 (100%)" in status and "by system:cli" in status


def sql_exec(query: str, **params: Any) -> None:
    with transaction(runtime.sessions()) as session:
        session.execute(text(query), params)


def reenrol_job(session: Any, job_id: Any) -> Any:
    job = TemplateJobRepository(session).get_any(as_uuid(str(job_id)))
    assert job is not None
    return job
