"""Face templates: re-enrolment of the organisation's templates with current settings."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from services.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from services.biometrics import reenrol

router = APIRouter(prefix="/api/v1/biometrics", tags=["biometrics"])


class ReenrolOut(BaseModel):
    """Progress of a re-enrolment job: ``done + skipped + erased`` of ``total`` reference
    photos handled (``fraction``, 0..1). ``skipped``: photos the enrolment gate refuses
    now (their old template stays) or erased meanwhile; ``erased``: photos of pupils
    without current biometric consent, whose templates were erased."""

    job_id: uuid.UUID
    status: str  # running | done | failed
    jitters: int
    total: int
    done: int
    skipped: int
    erased: int
    fraction: float
    requested_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None


class ReenrolStatusOut(BaseModel):
    # The organisation's newest job; null if templates were never re-enrolled.
    job: ReenrolOut | None


def _out(p: reenrol.ReenrolProgress) -> ReenrolOut:
    return ReenrolOut(
        job_id=p.job_id, status=p.status, jitters=p.jitters, total=p.total, done=p.done,
        skipped=p.skipped, erased=p.erased, fraction=round(p.fraction, 4),
        requested_by=p.requested_by, started_at=p.started_at, updated_at=p.updated_at,
        finished_at=p.finished_at, error=p.error,
    )


@router.get("/reenrol")
def reenrol_status(session: SessionDep, principal: CurrentPrincipal) -> ReenrolStatusOut:
    """The newest re-enrolment job and its progress (SLT and admin)."""
    found = reenrol.latest(session, principal)
    return ReenrolStatusOut(job=None if found is None else _out(found))


@router.post("/reenrol", status_code=status.HTTP_202_ACCEPTED,
             responses={200: {"description": "a re-enrolment is already running: that one"}})
def reenrol_start(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                  response: Response) -> ReenrolOut:
    """Recompute every template from its stored reference photo with the current settings
    (`CONSENTGATE_ENROL_JITTERS`), in the background (SLT and admin). Only pupils with
    current biometric consent keep a template. Media screened before are re-screened.
    Idempotent: while a job runs, this returns it with 200."""
    progress, created = reenrol.start(session, settings, principal, principal.org_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(progress)
