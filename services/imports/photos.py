"""Bulk enrolment: reference photos named by UPN (`<UPN>.jpg`, `<UPN>_2.jpg`), from a zip
or a folder an MIS exported.

Each file gets its own result; one bad photo does not stop the rest. Templates are
computed first, with no lock held (the slow part); consent and the pupil's active flag
are then checked again under the gate lock before anything is stored, exactly as a
single enrolment (services.register.service.add_reference_photo). A photo whose bytes
are already enrolled for that pupil is not enrolled twice, so re-running an import
changes nothing."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from models.orm import Pupil
from models.repositories.pupils import PupilRepository
from services.biometrics import enrol
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import InvalidInput
from services.core.jobs import enqueue
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current
from services.register.service import RESCREEN_TASK
from storage.base import ObjectStore

# Reference photos are portraits: a school's whole export is well under this.
MAX_FILES = 5_000
MAX_FILE_BYTES = 25 * 1024 * 1024
# What a zip may unpack to, counted on the bytes actually read (sizes in a zip's headers
# can lie): a secondary school's photographer originals, not a zip bomb.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
_NAME = re.compile(r"^([A-Za-z0-9]{13})(?:_(\d{1,3}))?$")

# Results and refusal codes; words for them are made at the edge (services.words).
ENROLLED = "enrolled"
REFUSED = "refused"
UNKNOWN_UPN = "unknown_upn"
ALREADY = "already_enrolled"

Progress = Callable[[str, int, int], None]


@dataclass
class PhotoResult:
    file: str
    result: str
    upn: str | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "upn": self.upn, "result": self.result}
        if self.reason is not None:
            out["reason"] = self.reason
            out["reason_data"] = self.data
        return out


@dataclass
class PhotoImport:
    results: list[PhotoResult]

    def counts(self) -> dict[str, int]:
        out = {ENROLLED: 0, REFUSED: 0, UNKNOWN_UPN: 0, ALREADY: 0}
        for r in self.results:
            out[r.result] += 1
        return out


def entries_from_zip(data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidInput("this is not a zip file", error_code="not_a_zip") from exc
    infos = [i for i in archive.infolist() if not i.is_dir() and not _hidden(i.filename)]
    if len(infos) > MAX_FILES:
        raise InvalidInput(f"a zip may hold at most {MAX_FILES} photos", files=len(infos))
    too_big = InvalidInput("the zip unpacks to more than 1 GiB; split it into several",
                           error_code="too_large")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        raise too_big
    out: list[tuple[str, bytes]] = []
    total = 0
    for info in infos:
        if info.file_size > MAX_FILE_BYTES:
            out.append((info.filename, b""))  # refused below as too large, unread
            continue
        try:
            with archive.open(info) as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
                zlib.error) as exc:
            # Damaged, encrypted or an unknown compression method.
            raise InvalidInput(f"the zip is damaged at {info.filename}",
                               error_code="not_a_zip") from exc
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise too_big
        out.append((info.filename, b"" if len(data) > MAX_FILE_BYTES else data))
    return out


def entries_from_dir(path: Path) -> list[tuple[str, bytes]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.name))
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a folder may hold at most {MAX_FILES} photos", files=len(files))
    return [(str(p.relative_to(path)), p.read_bytes() if p.stat().st_size <= MAX_FILE_BYTES
             else b"") for p in files]


def _hidden(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _upn_of(name: str) -> str | None:
    stem = PurePosixPath(name.replace("\\", "/"))
    if stem.suffix.lower() not in PHOTO_SUFFIXES:
        return None
    found = _NAME.match(stem.stem)
    return found.group(1).upper() if found else None


@dataclass
class Plan:
    """What a photo import will do: a result per file, and the photos still to enrol
    (with their templates once computed)."""

    results: list[PhotoResult]
    ready: list[tuple[PhotoResult, Pupil, bytes, Any]]


def plan(session: Session, principal: Principal,
         entries: Iterable[tuple[str, bytes]]) -> Plan:
    """Match files to pupils and check consent (database reads only)."""
    items = list(entries)
    repo = PupilRepository(session)
    register = repo.by_external_id(principal.org_id)
    candidates = [register[u] for u in {_upn_of(n) for n, _ in items} if u in register]
    histories = repo.biometric_histories(p.id for p in candidates)
    enrolled = repo.reference_hashes(p.id for p in candidates)
    results: list[PhotoResult] = []
    ready: list[tuple[PhotoResult, Pupil, bytes, Any]] = []
    for name, data in items:
        upn = _upn_of(name)
        result = PhotoResult(file=name, result=REFUSED, upn=upn)
        results.append(result)
        pupil = register.get(upn) if upn else None
        if upn is None:
            result.reason = "bad_name"
        elif pupil is None:
            result.result = UNKNOWN_UPN
        elif not data:
            result.reason, result.data = "too_large", {"max_bytes": MAX_FILE_BYTES}
        elif not pupil.active:
            result.reason = "left"
        elif not biometric_is_current(histories.get(pupil.id, [])):
            # Checked before the engine runs: a face without consent is never processed.
            result.reason = "no_biometric_consent"
        elif (pupil.id, hashlib.sha256(data).hexdigest()) in enrolled:
            result.result = ALREADY
        else:
            ready.append((result, pupil, data, None))
    return Plan(results, ready)


def compute(settings: Settings, planned: Plan, progress: Progress | None = None) -> None:
    """The slow part, with no database session or lock: a template per photo to enrol;
    photos the engine refuses get their reason."""
    kept: list[tuple[PhotoResult, Pupil, bytes, Any]] = []
    for done, (result, pupil, data, _) in enumerate(planned.ready, 1):
        try:
            encoding = enrol.compute_template(settings, data)
        except InvalidInput as exc:
            details = dict(exc.details)
            result.reason = str(details.pop("reason_code", None)
                                or details.pop("code", None) or "unusable")
            details.pop("reason", None)
            result.data = details
        else:
            kept.append((result, pupil, data, encoding))
        if progress is not None:
            progress("check", done, len(planned.ready))
    planned.ready = kept


def store_all(session: Session, store: ObjectStore, settings: Settings, principal: Principal,
              planned: Plan) -> PhotoImport:
    """Under the gate lock: check consent and the active flag again, then store."""
    if planned.ready:
        lock_for_change(session, principal.org_id)
        repo = PupilRepository(session)
        ids = [p.id for _, p, _, _ in planned.ready]
        fresh = repo.biometric_histories(ids)
        active = repo.active_flags(ids)
        pupils = repo.get_many(ids)
        hashes = repo.reference_hashes(ids)
        for result, pupil, data, encoding in planned.ready:
            digest = hashlib.sha256(data).hexdigest()
            if not active.get(pupil.id, False):
                result.reason = "left"
            elif not biometric_is_current(fresh.get(pupil.id, [])):
                result.reason = "no_biometric_consent"
            elif (pupil.id, digest) in hashes:
                result.result = ALREADY
            else:
                enrol.store_template(session, store, settings, principal, pupils[pupil.id],
                                     data, encoding)
                hashes.add((pupil.id, digest))
                result.result = ENROLLED
        enqueue(session, RESCREEN_TASK, str(principal.org_id))
    outcome = PhotoImport(planned.results)
    audit(session, principal, "import.reference_photos", f"org:{principal.org_id}",
          {"files": len(outcome.results), **outcome.counts()})
    return outcome


def import_photos(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    entries: Iterable[tuple[str, bytes]],
    *,
    progress: Progress | None = None,
) -> PhotoImport:
    """All in one transaction (the CLI). The API plans in a read session, computes with
    none, and stores in a short write transaction, so on SQLite the database is not held
    while the engine works."""
    planned = plan(session, principal, entries)
    compute(settings, planned, progress)
    return store_all(session, store, settings, principal, planned)
