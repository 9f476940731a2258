"""Re-enrolment: every template of an organisation recomputed from its stored reference
photo with the current settings (``Settings.enrol_jitters``), as a background job with
progress (docs/calibration.md, "Enrolment templates").

Rules:

* Only pupils who are active and whose biometric consent is current (PoFA 2012 s.26)
  get a template back. A template found for anyone else is erased with their photos
  (it should not exist; a template never outlives consent).
* Reference photos are taken in id order, ``reenrol_batch`` at a time. Templates are
  computed with no lock held; then, under the organisation's gate lock, consent and the
  photo are read again, the batch's templates are replaced, the match epoch is bumped
  (every medium with faces screened before is stale and blocked until re-screened,
  docs/safety.md) and the job's counts and cursor are saved, all in one transaction.
  A redelivered or second runner resumes at the cursor; a batch whose cursor moved
  meanwhile is dropped and done again from the new cursor.
* A photo the enrolment gate refuses now keeps its old template (counted as skipped).
* At most one job runs per organisation; starting while one runs returns it.
* The re-screen dispatcher runs when the job finishes (the sweep re-screens stale media
  in between, and stale media stay blocked until then).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import FaceTemplate, Pupil, Role, TemplateJob, TemplateJobStatus
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from models.repositories.templates import TemplateJobRepository
from services.biometrics import enrol
from services.biometrics.templates import encrypt_template
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import InvalidInput, NotFound, ObjectNotFound
from services.core.jobs import RESCREEN_TASK, enqueue
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current
from storage.base import ObjectStore
from workers.engine.types import Encoding

log = logging.getLogger(__name__)

REENROL_TASK = "consentgate.reenrol_templates"
STARTERS = (Role.ADMIN, Role.SLT)
# A running job whose progress has not moved for this long is sent to a worker again
# when someone asks to start one (its message may have been lost with the broker).
RESEND_AFTER = timedelta(minutes=10)
WORKER = "reenrol"


@dataclass(frozen=True)
class ReenrolProgress:
    """A job's progress, as the API and the CLI show it."""

    job_id: uuid.UUID
    status: str
    jitters: int
    total: int
    done: int
    skipped: int
    erased: int
    requested_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None

    @property
    def handled(self) -> int:
        return self.done + self.skipped + self.erased

    @property
    def fraction(self) -> float:
        """0..1 of the photos there were at the start; 1 once done (photos erased by a
        withdrawal while the job ran are never handled) or with nothing to do."""
        if self.total == 0 or self.status == TemplateJobStatus.DONE:
            return 1.0
        return min(1.0, self.handled / self.total)


def progress_of(job: TemplateJob) -> ReenrolProgress:
    return ReenrolProgress(
        job_id=job.id, status=job.status, jitters=job.jitters, total=job.total,
        done=job.done, skipped=job.skipped, erased=job.erased,
        requested_by=job.requested_by, started_at=job.started_at, updated_at=job.updated_at,
        finished_at=job.finished_at, error=job.error,
    )


def latest(session: Session, principal: Principal) -> ReenrolProgress | None:
    """The organisation's newest job, running or not; None if there never was one."""
    principal.require(*STARTERS)
    job = TemplateJobRepository(session).latest(principal.org_id)
    return None if job is None else progress_of(job)


def start(session: Session, settings: Settings, who: Principal | SystemActor,
          org_id: uuid.UUID, *, send: bool = True) -> tuple[ReenrolProgress, bool]:
    """Start a re-enrolment of ``org_id`` (or return the one running); (progress, whether
    a new job was made). ``send``: hand it to a worker after commit (the CLI runs it
    itself instead)."""
    if isinstance(who, Principal):
        who.require(*STARTERS)
        if who.org_id != org_id:
            raise NotFound("no such organisation")
    lock_for_change(session, org_id)
    repo = TemplateJobRepository(session)
    running = repo.running(org_id)
    if running is not None:
        if send and utcnow() - running.updated_at > RESEND_AFTER:
            enqueue(session, REENROL_TASK, str(running.id))
        return progress_of(running), False
    now = utcnow()
    job = repo.add(TemplateJob(
        org_id=org_id, status=TemplateJobStatus.RUNNING.value, jitters=settings.enrol_jitters,
        total=repo.count_references(org_id, now + timedelta(microseconds=1)), done=0,
        skipped=0, erased=0, requested_by=who.actor, started_at=now, updated_at=now,
    ))
    audit(session, who, "templates.reenrol_started", f"org:{org_id}",
          {"job": str(job.id), "reference_photos": job.total, "jitters": job.jitters})
    if send:
        enqueue(session, REENROL_TASK, str(job.id))
    return progress_of(job), True


@dataclass
class _Computed:
    photo_id: uuid.UUID
    pupil_id: uuid.UUID
    encoding: Encoding | None  # None: not recomputed (see outcome)
    outcome: str  # "template" | "erase" | a skip code


def run(sessions: sessionmaker[Session], store: ObjectStore, settings: Settings,
        job_id: uuid.UUID, *,
        on_progress: Callable[[ReenrolProgress], None] | None = None) -> ReenrolProgress:
    """Work the job to its end (idempotent: a finished job returns at once)."""
    while True:
        with transaction(sessions, write=False) as session:
            repo = TemplateJobRepository(session)
            job = repo.get_any(job_id)
            if job is None:
                raise NotFound("no such re-enrolment job", job_id=str(job_id))
            snapshot = progress_of(job)
            if job.status != TemplateJobStatus.RUNNING:
                return snapshot
            org_id, cursor, before = job.org_id, job.last_photo_id, job.started_at
            batch = repo.references_after(org_id, before + timedelta(microseconds=1),
                                          cursor, settings.reenrol_batch)
            pupils = PupilRepository(session)
            histories = pupils.biometric_histories({pid for _p, pid, _k in batch})
            active = pupils.active_flags(histories)
            allowed = {pid for pid, h in histories.items()
                       if biometric_is_current(h) and active.get(pid, False)}
        if not batch:
            done = _finish(sessions, job_id, cursor)
            if done is not None:
                if on_progress is not None:
                    on_progress(done)
                return done
            continue
        computed = [_compute(store, settings, photo_id, pupil_id, key, pupil_id in allowed)
                    for photo_id, pupil_id, key in batch]
        saved = _save(sessions, settings, job_id, org_id, cursor, computed)
        if saved is not None and on_progress is not None:
            on_progress(saved)


def _compute(store: ObjectStore, settings: Settings, photo_id: uuid.UUID,
             pupil_id: uuid.UUID, key: str, allowed: bool) -> _Computed:
    if not allowed:
        return _Computed(photo_id, pupil_id, None, "erase")
    try:
        data = settings.template_fernet().decrypt(store.get(key))
    except ObjectNotFound:
        return _Computed(photo_id, pupil_id, None, "photo_missing")
    try:
        encoding = enrol.compute_template(settings, data)
    except InvalidInput as exc:
        return _Computed(photo_id, pupil_id, None, str(exc.details.get("gate", exc.code)))
    return _Computed(photo_id, pupil_id, encoding, "template")


def _save(sessions: sessionmaker[Session], settings: Settings, job_id: uuid.UUID,
          org_id: uuid.UUID, cursor: uuid.UUID | None,
          computed: list[_Computed]) -> ReenrolProgress | None:
    """One batch under the gate lock; None if another runner moved the cursor first."""
    actor = SystemActor(WORKER, org_id)
    with transaction(sessions) as session:
        lock_for_change(session, org_id)
        repo = TemplateJobRepository(session)
        job = repo.get_any(job_id)
        if job is None or job.status != TemplateJobStatus.RUNNING or job.last_photo_id != cursor:
            return None
        pupils = PupilRepository(session)
        erased: set[uuid.UUID] = set()
        skipped: dict[str, int] = {}
        replaced = 0
        for c in computed:
            pupil = pupils.get(org_id, c.pupil_id)
            if pupil is not None and not (
                pupil.active and biometric_is_current(pupils.biometric_history(pupil.id))
            ):
                if pupil.id not in erased:
                    # All of the pupil's photos still ahead of the cursor go now; later
                    # batches will not see them.
                    job.erased += repo.count_pupil_references_after(
                        pupil.id, job.started_at + timedelta(microseconds=1), cursor)
                    _erase(session, actor, pupil)
                    erased.add(pupil.id)
                continue
            photo = repo.reference(c.photo_id)
            if pupil is None or photo is None:
                # Erased meanwhile (a withdrawal, a leaver, an objection).
                skipped["photo_gone"] = skipped.get("photo_gone", 0) + 1
                continue
            if c.encoding is None:
                # Consent granted while we computed ("erase"), photo missing, or refused
                # by the gate now: the old template stays.
                code = "consent_changed" if c.outcome == "erase" else c.outcome
                skipped[code] = skipped.get(code, 0) + 1
                continue
            repo.replace_template(photo, FaceTemplate(
                ciphertext=encrypt_template(settings, c.encoding), created_at=utcnow()))
            replaced += 1
        job.done += replaced
        job.skipped += sum(skipped.values())
        job.last_photo_id = computed[-1].photo_id
        job.updated_at = utcnow()
        if replaced:
            # New templates: every screening made against the old ones is stale.
            OrganisationRepository(session).bump_match_epoch(org_id)
        session.flush()
        audit(session, actor, "templates.reenrolled", f"org:{org_id}",
              {"job": str(job.id), "templates": replaced, "skipped": skipped,
               "erased_pupils": sorted(str(p) for p in erased)})
        return progress_of(job)


def _erase(session: Session, actor: SystemActor, pupil: Pupil) -> None:
    log.warning("re-enrolment found templates of pupil %s without current biometric consent "
                "or active status; erasing them", pupil.id)
    enrol.erase(session, actor, pupil, reason="no current biometric consent at re-enrolment")


def _finish(sessions: sessionmaker[Session], job_id: uuid.UUID,
            cursor: uuid.UUID | None) -> ReenrolProgress | None:
    with transaction(sessions) as session:
        probe = TemplateJobRepository(session).get_any(job_id)
        if probe is None:
            raise NotFound("no such re-enrolment job", job_id=str(job_id))
        org_id = probe.org_id
        lock_for_change(session, org_id)
        job = TemplateJobRepository(session).get_any(job_id)
        if job is None or job.last_photo_id != cursor:
            return None
        if job.status == TemplateJobStatus.RUNNING:
            job.status = TemplateJobStatus.DONE.value
            job.finished_at = job.updated_at = utcnow()
            session.flush()
            audit(session, SystemActor(WORKER, org_id), "templates.reenrol_finished",
                  f"org:{org_id}", {"job": str(job.id), "templates": job.done,
                                    "skipped": job.skipped, "erased": job.erased})
            enqueue(session, RESCREEN_TASK, str(org_id))
        return progress_of(job)


def mark_failed(sessions: sessionmaker[Session], job_id: uuid.UUID, error: str) -> None:
    """A job that cannot go on (the task gave up): failed, with why; done batches stay."""
    with transaction(sessions) as session:
        probe = TemplateJobRepository(session).get_any(job_id)
        if probe is None or probe.status != TemplateJobStatus.RUNNING:
            return
        org_id = probe.org_id
        lock_for_change(session, org_id)
        job = TemplateJobRepository(session).get_any(job_id)
        if job is None or job.status != TemplateJobStatus.RUNNING:
            return
        job.status = TemplateJobStatus.FAILED.value
        job.error = error[:2000]
        job.finished_at = job.updated_at = utcnow()
        session.flush()
        audit(session, SystemActor(WORKER, org_id), "templates.reenrol_failed",
              f"org:{org_id}", {"job": str(job.id), "error": job.error})
        # Batches already saved bumped the match epoch: re-screen what they made stale.
        enqueue(session, RESCREEN_TASK, str(org_id))
