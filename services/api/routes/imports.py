"""Bulk import: the register from an MIS export, and enrolment photos from a zip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from models.db import transaction
from models.orm import Role
from services.api.deps import (
    CurrentPrincipal,
    ReadPrincipal,
    ReadSessionDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
)
from services.core.errors import TooLarge
from services.imports import photos as photo_import
from services.imports import pupils as pupil_import
from services.words import PHOTO_RESULTS, photo_refusal_text

router = APIRouter(prefix="/api/v1/imports", tags=["import"])


class PupilImportOut(BaseModel):
    format: str = Field(description="header style recognised: sims, arbor or consentgate")
    rows: int
    created: int
    updated: int
    unchanged: int
    left: int
    consents_recorded: int
    publications_taken_down: int
    templates_erased: int
    dry_run: bool
    sync: bool
    ignored_columns: list[str]


class ImportErrorOut(BaseModel):
    row: int = Field(description="CSV line as a spreadsheet numbers it; the header is 1")
    column: str
    code: str
    message: str
    value: str


class ImportInvalidOut(BaseModel):
    error: str = "import_invalid"
    detail: str
    errors: list[ImportErrorOut]


class PhotoFileOut(BaseModel):
    file: str
    upn: str | None
    result: str = Field(description="enrolled, refused, unknown_upn or already_enrolled")
    reason: str | None = Field(default=None, description="refusal code (docs/import.md)")
    reason_data: dict[str, Any] | None = None
    detail: str


class PhotoImportOut(BaseModel):
    files: list[PhotoFileOut]
    counts: dict[str, int]

MAX_ZIP_BYTES = 512 * 1024 * 1024


def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{what} is larger than {limit // (1024 * 1024)} MiB")
    return data


@router.get("/pupils/template.csv", response_class=PlainTextResponse)
def pupil_template(principal: CurrentPrincipal) -> PlainTextResponse:
    principal.require(Role.SLT, Role.ADMIN)
    return PlainTextResponse(
        pupil_import.template_csv(), media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="consentgate-pupils.csv"'})


@router.post("/pupils", responses={422: {"model": ImportInvalidOut}})
def import_pupils(
    file: Annotated[UploadFile, File(description="CSV from SIMS, Arbor or the template")],
    session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    sync: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form()] = False,
    sync_q: Annotated[bool, Query(alias="sync")] = False,
    dry_run_q: Annotated[bool, Query(alias="dry_run")] = False,
) -> PupilImportOut:
    """Atomic: any error imports nothing and answers 422 listing every error with its
    row and column. `sync=true`: pupils missing from the file are marked as left."""
    principal.require(Role.SLT, Role.ADMIN)
    data = _read(file, pupil_import.MAX_BYTES, "the file")
    result = pupil_import.import_pupils(session, settings, principal, data,
                                        sync=sync or sync_q, dry_run=dry_run or dry_run_q)
    return PupilImportOut(**result.as_json())


@router.post("/reference-photos")
def import_reference_photos(
    file: Annotated[UploadFile, File(description="a zip of photos named <UPN>.jpg")],
    sessions: SessionsDep, session: ReadSessionDep, store: StoreDep, settings: SettingsDep,
    principal: ReadPrincipal,
) -> PhotoImportOut:
    """Matched and checked in a read session, templates computed with no transaction
    open (seconds per photo), stored in one short write transaction under the gate lock
    (consent checked again there)."""
    principal.require(Role.SLT, Role.ADMIN)
    entries = photo_import.entries_from_zip(_read(file, MAX_ZIP_BYTES, "the zip"))
    planned = photo_import.plan(session, principal, entries)
    # End the read transaction before the slow part; what was read stays loaded.
    session.expunge_all()
    session.rollback()
    photo_import.compute(settings, planned)
    with transaction(sessions) as write:
        outcome = photo_import.store_all(write, store, settings, principal, planned)
    return photo_answer(outcome)


def photo_answer(outcome: photo_import.PhotoImport) -> PhotoImportOut:
    files = []
    for r in outcome.results:
        row = r.as_json()
        row["detail"] = (photo_refusal_text(r.reason, r.data) if r.reason is not None
                         else PHOTO_RESULTS[r.result])
        files.append(PhotoFileOut(**row))
    return PhotoImportOut(files=files, counts=outcome.counts())
