"""Import the register from a school MIS export (SIMS, Arbor, or ConsentGate's template).

The import is atomic: every row is checked first and a file with any error changes
nothing (InvalidInput with every error, each with its CSV line and column). A clean file
is applied in one transaction under the organisation's gate lock, with bulk queries
(one read of the register, one insert per table, one audit append), so a 600-pupil
file is a handful of round trips. Only the consequences that need the per-pupil leaver
and withdrawal flows (templates erased, publications re-decided) run per pupil, and only
for the pupils they concern.

Re-importing the same file changes nothing: a consent is written only when the file
says something different from the pupil's current record for that channel."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidLength, ValidationError
from stdnum.gb import upn as stdnum_upn

from models.clock import utcnow
from models.orm import (
    CAPTURE,
    BiometricBy,
    BiometricConsent,
    BiometricStatus,
    Channel,
    ConsentStatus,
    GivenBy,
    PublicationConsent,
    Pupil,
)
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.biometrics import enrol
from services.core.audit import record as audit
from services.core.audit import record_many
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import InvalidInput
from services.core.jobs import enqueue
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current
from services.register import service as register
from services.register.service import RESCREEN_TASK
from services.takedown import service as takedown

# A secondary school is ~1,500 pupils; a trust-wide export a few thousand.
MAX_ROWS = 20_000
MAX_BYTES = 10 * 1024 * 1024

# Stage names for progress callbacks: (stage, done, total).
Progress = Callable[[str, int, int], None]

# Header aliases, after normalising (lower case, "_"/"-" as spaces, spaces collapsed).
ALIASES: dict[str, tuple[str, ...]] = {
    "upn": ("upn", "unique pupil number"),
    "family_name": ("legal surname", "last name", "family name", "surname"),
    "given_name": ("legal forename", "first name", "given name", "forename"),
    "preferred_name": ("preferred forename", "preferred first name", "preferred name"),
    "year_group": ("year group", "year", "nc year"),
    "reg_group": ("reg group", "reg", "registration form", "registration group", "form",
                  "reg form"),
    "biometric": ("biometric", "biometric consent", "face matching"),
    "given_by": ("given by", "consent given by"),
    "evidence_ref": ("evidence ref", "evidence", "evidence reference", "consent evidence"),
}
# Consent columns: one per publication channel, and "capture" (may be photographed at
# all), each keyed by the name the consent histories use (Channel value or CAPTURE).
CHANNEL_COLUMNS: dict[str, str] = {
    **{c.value.replace("_", " "): c.value for c in Channel},
    **{alias: CAPTURE for alias in ("capture", "capture consent", "may be photographed",
                                    "photographed", "photography consent")},
}

# The header of ConsentGate's own template (docs/import.md), in this order.
TEMPLATE_HEADER = ["upn", "given_name", "family_name", "year_group", "reg_group",
                   *[c.value for c in Channel], CAPTURE, "biometric", "given_by",
                   "evidence_ref"]

CONSENT_VALUES = {"granted": ConsentStatus.GRANTED, "withdrawn": ConsentStatus.WITHDRAWN,
                  "refused": ConsentStatus.REFUSED}
# A blank cell (or the MIS's "not returned") records nothing and leaves consent as it is.
BLANK_VALUES = {"", "not returned", "not_returned"}
BIOMETRIC_VALUES = {"granted": BiometricStatus.GRANTED, "withdrawn": BiometricStatus.WITHDRAWN,
                    "objected": BiometricStatus.OBJECTED, "refused": BiometricStatus.OBJECTED}
GIVEN_BY_VALUES = {"guardian": GivenBy.GUARDIAN, "parent": GivenBy.GUARDIAN,
                   "carer": GivenBy.GUARDIAN, "pupil": GivenBy.PUPIL}


def template_csv() -> str:
    """The empty template a school fills in, with one example row (a valid test UPN)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADER)
    writer.writerow(["B801200005001", "Ada", "Example", "Year 5", "5B", "granted", "refused",
                     "granted", "", "withdrawn", "granted", "granted", "guardian", "form-2026-09"])
    return out.getvalue()


@dataclass(frozen=True)
class RowError:
    """One problem: `row` is the CSV line as a spreadsheet numbers it (header = 1)."""

    row: int
    column: str
    code: str
    message: str
    value: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code,
                "message": self.message, "value": self.value}


@dataclass
class ImportRow:
    line: int
    upn: str
    given_name: str
    family_name: str
    year_group: str
    reg_group: str | None
    # Keyed by channel value or CAPTURE.
    consents: dict[str, ConsentStatus]
    biometric: BiometricStatus | None
    given_by: GivenBy
    evidence_ref: str


@dataclass
class ImportResult:
    format: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    left: int = 0
    consents_recorded: int = 0
    publications_taken_down: int = 0
    templates_erased: int = 0
    dry_run: bool = False
    sync: bool = False
    ignored_columns: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"format": self.format, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged, "left": self.left,
                "consents_recorded": self.consents_recorded,
                "publications_taken_down": self.publications_taken_down,
                "templates_erased": self.templates_erased, "dry_run": self.dry_run,
                "sync": self.sync, "ignored_columns": self.ignored_columns}


# --- reading and checking the file -------------------------------------------------


def _norm(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("-", " ").strip().lower().split())


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
                           errors=[RowError(0, "", "too_large", "file too large").as_json()])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" as cp1252.
        return data.decode("cp1252", errors="replace")


@dataclass
class _Columns:
    index: dict[str, int]
    channels: dict[str, int]
    headers: list[str]
    ignored: list[str]
    format: str


def _columns(header: list[str]) -> tuple[_Columns, list[RowError]]:
    index: dict[str, int] = {}
    channels: dict[str, int] = {}
    ignored: list[str] = []
    errors: list[RowError] = []
    lookup = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
    for i, raw in enumerate(header):
        key = _norm(raw)
        name = lookup.get(key)
        channel = CHANNEL_COLUMNS.get(key)
        target = name or (f"channel:{channel}" if channel else None)
        if target is None:
            if key:
                ignored.append(raw.strip())
            continue
        if target in index or (channel is not None and channel in channels):
            errors.append(RowError(1, raw.strip(), "duplicate_column",
                                   "this column appears twice in the header", raw))
            continue
        if channel is not None:
            channels[channel] = i
        else:
            assert name is not None
            index[name] = i
    keys = {_norm(h) for h in header}
    fmt = ("sims" if "legal surname" in keys else "arbor" if "last name" in keys
           else "consentgate")
    if "given_name" not in index and "preferred_name" in index:
        index["given_name"] = index["preferred_name"]
    for needed, shown in (("upn", "UPN"), ("family_name", "family name"),
                          ("given_name", "given name"), ("year_group", "year group")):
        if needed not in index:
            errors.append(RowError(1, shown, "missing_column",
                                   f"the header has no {shown} column (see docs/import.md "
                                   "for the names SIMS, Arbor and the template use)"))
    return _Columns(index, channels, [h.strip() for h in header], ignored, fmt), errors


def _cell(values: list[str], index: int | None) -> str:
    if index is None or index >= len(values):
        return ""
    return values[index].strip()


def _check_upn(raw: str) -> tuple[str, RowError | None]:
    """(compact UPN, error or None); stdnum checks the format, the local-authority
    number and the check letter."""
    value = stdnum_upn.compact(raw)
    try:
        return stdnum_upn.validate(value), None
    except InvalidChecksum:
        return value, RowError(0, "UPN", "upn_check_letter",
                               "the UPN's check letter does not match its digits", raw)
    except InvalidComponent:
        return value, RowError(0, "UPN", "upn_local_authority",
                               "the UPN's local authority number is not a known one", raw)
    except InvalidLength:
        return value, RowError(0, "UPN", "upn_length", "a UPN is 13 characters", raw)
    except ValidationError:
        return value, RowError(0, "UPN", "upn_format",
                               "this is not a UPN (a letter, 11 digits, then a digit or "
                               "letter)", raw)


def parse(data: bytes) -> tuple[list[ImportRow], _Columns, list[RowError]]:
    """Every row of the file, and every error in it (nothing is written here)."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the file is empty", errors=[
            RowError(1, "", "empty_file", "the file is empty").as_json()]) from None
    except csv.Error as exc:
        raise InvalidInput("the file is not CSV", errors=[
            RowError(1, "", "not_csv", str(exc)).as_json()]) from None
    cols, errors = _columns(header)
    if errors:
        return [], cols, errors
    headers = cols.headers

    def shown(name: str) -> str:
        return headers[cols.index[name]]

    rows: list[ImportRow] = []
    first_line: dict[str, int] = {}
    lines: Iterator[list[str]] = reader
    line = 1
    try:
        for values in lines:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                errors.append(RowError(line, "", "too_many_rows",
                                       f"a file may hold at most {MAX_ROWS} pupils"))
                break
            row_errors: list[RowError] = []

            def err(column: str, code: str, message: str, value: str = "",
                    _line: int = line, _into: list[RowError] = row_errors) -> None:
                _into.append(RowError(_line, column, code, message, value))

            raw_upn = _cell(values, cols.index["upn"])
            upn = ""
            if not raw_upn:
                err(shown("upn"), "missing", "the UPN is empty")
            else:
                upn, problem = _check_upn(raw_upn)
                if problem is not None:
                    err(shown("upn"), problem.code, problem.message, raw_upn)
                elif upn in first_line:
                    err(shown("upn"), "duplicate_upn",
                        f"this UPN is also on row {first_line[upn]}", raw_upn)
                else:
                    first_line[upn] = line
            family = _cell(values, cols.index["family_name"])
            given = (_cell(values, cols.index.get("preferred_name"))
                     or _cell(values, cols.index["given_name"]))
            year = _cell(values, cols.index["year_group"])
            reg = _cell(values, cols.index.get("reg_group")) or None
            for name, value, limit in (("family_name", family, 200),
                                       ("given_name", given, 200),
                                       ("year_group", year, 32)):
                if not value:
                    err(shown(name), "missing", "this cell is empty")
                elif len(value) > limit:
                    err(shown(name), "too_long", f"at most {limit} characters", value[:40])
            if reg is not None and len(reg) > 32:
                err(shown("reg_group"), "too_long", "at most 32 characters", reg[:40])
            consents: dict[str, ConsentStatus] = {}
            for channel, i in cols.channels.items():
                value = _cell(values, i).lower()
                if value in BLANK_VALUES:
                    continue
                if value not in CONSENT_VALUES:
                    err(headers[i], "consent_value",
                        "consent is granted, withdrawn, refused or blank", _cell(values, i))
                    continue
                consents[channel] = CONSENT_VALUES[value]
            biometric: BiometricStatus | None = None
            if "biometric" in cols.index:
                value = _cell(values, cols.index["biometric"]).lower()
                if value not in BLANK_VALUES:
                    if value not in BIOMETRIC_VALUES:
                        err(shown("biometric"), "biometric_value",
                            "face-matching consent is granted, withdrawn, objected, "
                            "refused or blank", value)
                    else:
                        biometric = BIOMETRIC_VALUES[value]
            raw_by = _cell(values, cols.index.get("given_by")).lower()
            given_by = GivenBy.GUARDIAN
            if raw_by:
                if raw_by not in GIVEN_BY_VALUES:
                    err(shown("given_by"), "given_by_value", "given_by is guardian or pupil",
                        raw_by)
                else:
                    given_by = GIVEN_BY_VALUES[raw_by]
            evidence = _cell(values, cols.index.get("evidence_ref"))
            if (consents or biometric is not None) and not evidence:
                err(headers[cols.index["evidence_ref"]] if "evidence_ref" in cols.index
                    else "evidence_ref", "evidence_missing",
                    "a consent needs its evidence reference (the form it was given on)")
            elif len(evidence) > 500:
                err(shown("evidence_ref"), "too_long", "at most 500 characters",
                    evidence[:40])
            errors.extend(row_errors)
            if not row_errors:
                rows.append(ImportRow(line, upn, given, family, year, reg, consents,
                                      biometric, given_by, evidence))
    except csv.Error as exc:
        errors.append(RowError(line + 1, "", "not_csv", f"this line is not CSV: {exc}"))
    return rows, cols, errors


# --- applying it ------------------------------------------------------------------


def import_pupils(
    session: Session,
    settings: Settings,
    principal: Principal,
    data: bytes,
    *,
    sync: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Check the whole file, then (unless `dry_run`) apply it. Raises InvalidInput listing
    every error, having changed nothing."""
    rows, cols, errors = parse(data)
    if errors:
        raise InvalidInput(
            f"the file has {len(errors)} error{'s' if len(errors) != 1 else ''}; "
            "nothing was imported", errors=[e.as_json() for e in errors],
            error_code="import_invalid")
    if not rows:
        raise InvalidInput("the file has a header but no pupils; nothing was imported",
                           errors=[RowError(2, "", "no_rows", "no pupils").as_json()],
                           error_code="import_invalid")
    if not dry_run:
        # Before any read the plan depends on: the register cannot change under it.
        lock_for_change(session, principal.org_id)
    org_id = principal.org_id
    repo = PupilRepository(session)
    existing = repo.by_external_id(org_id)
    ids = [p.id for p in existing.values()]
    known = set(ids)
    by_id = {p.id: p for p in existing.values()}
    # Per giver: a guardian's and the pupil's own consent are separate histories.
    latest = repo.latest_consents_by_giver(ids)
    histories = repo.biometric_histories(ids)
    result = ImportResult(format=cols.format, rows=len(rows), dry_run=dry_run, sync=sync,
                          ignored_columns=cols.ignored)
    now = utcnow()
    # Rows for bulk INSERTs (Core executemany: no ORM unit of work for thousands of rows).
    new_pupils: list[dict[str, Any]] = []
    reactivate: list[Pupil] = []
    consent_rows: list[dict[str, Any]] = []
    biometric_rows: list[dict[str, Any]] = []
    events: list[tuple[str, str, dict[str, Any]]] = []
    withdrawn_for: dict[uuid.UUID, str] = {}
    biometric_ended: dict[uuid.UUID, str] = {}
    gallery_grew = False
    seen: set[str] = set()
    for done, row in enumerate(rows, 1):
        seen.add(row.upn)
        pupil = existing.get(row.upn)
        pupil_id: uuid.UUID
        changed = False
        events_before = len(events)
        if pupil is None:
            pupil_id = uuid.uuid4()
            new = {"id": pupil_id, "org_id": org_id, "external_id": row.upn,
                   "given_name": row.given_name, "family_name": row.family_name,
                   "year_group": row.year_group, "reg_group": row.reg_group, "active": True,
                   "created_at": now}
            new_pupils.append(new)
            events.append(("pupil.created", f"pupil:{pupil_id}",
                           {"year_group": row.year_group, "source": "import"}))
            result.created += 1
        else:
            pupil_id = pupil.id
            fields = {"given_name": row.given_name, "family_name": row.family_name,
                      "year_group": row.year_group, "reg_group": row.reg_group}
            diff = {k: v for k, v in fields.items() if getattr(pupil, k) != v}
            if diff:
                changed = True
                if not dry_run:
                    for k, v in diff.items():
                        setattr(pupil, k, v)
                events.append(("pupil.updated", f"pupil:{pupil.id}",
                               {"fields": sorted(diff), "source": "import"}))
            if not pupil.active:
                changed = True
                reactivate.append(pupil)
        for channel, status in row.consents.items():
            current = latest.get((pupil_id, channel, row.given_by.value))
            if (current is not None and current.status == status.value
                    and current.given_by == row.given_by.value
                    and current.evidence_ref == row.evidence_ref
                    and current.expires_on is None):
                continue
            consent_rows.append({
                "pupil_id": pupil_id, "channel": channel, "status": status.value,
                "given_by": row.given_by.value, "evidence_ref": row.evidence_ref,
                "recorded_by": principal.actor, "recorded_at": now, "expires_on": None})
            events.append(("consent.recorded", f"pupil:{pupil_id}",
                           {"channel": channel, "status": status.value,
                            "given_by": row.given_by.value, "evidence_ref": row.evidence_ref,
                            "expires_on": None, "source": "import"}))
            if status != ConsentStatus.GRANTED and pupil_id in known:
                withdrawn_for[pupil_id] = f"{channel} consent {status.value} (import)"
        if row.biometric is not None:
            by = BiometricBy.PUPIL if row.given_by == GivenBy.PUPIL else BiometricBy.PARENT
            history = histories.get(pupil_id, [])
            mine = [r for r in history if r.by == by.value]
            last = mine[-1] if mine else None
            if last is None or last.status != row.biometric.value \
                    or last.evidence_ref != row.evidence_ref:
                values = {"pupil_id": pupil_id, "status": row.biometric.value,
                          "by": by.value, "evidence_ref": row.evidence_ref,
                          "recorded_by": principal.actor, "recorded_at": now}
                was = biometric_is_current(history)
                is_now = biometric_is_current([*history, BiometricConsent(**values)])
                biometric_rows.append(values)
                events.append(("biometric_consent.recorded", f"pupil:{pupil_id}",
                               {"status": row.biometric.value, "by": by.value,
                                "evidence_ref": row.evidence_ref, "current": is_now,
                                "source": "import"}))
                if was and not is_now:
                    biometric_ended[pupil_id] = f"biometric {row.biometric.value}"
                gallery_grew = gallery_grew or (is_now and not was)
        if pupil_id in known:
            if changed or len(events) > events_before:
                result.updated += 1
            else:
                result.unchanged += 1
        if progress is not None:
            progress("check", done, len(rows))
    result.consents_recorded = len(consent_rows) + len(biometric_rows)
    leavers = [p for upn, p in existing.items() if sync and p.active and upn not in seen]
    result.left = len(leavers)
    if dry_run:
        return result

    session.flush()  # field updates of existing pupils
    repo.insert_rows(Pupil, new_pupils)
    repo.insert_rows(PublicationConsent, consent_rows)
    repo.insert_rows(BiometricConsent, biometric_rows)
    record_many(session, principal, events)
    for pupil in reactivate:
        register.set_active(session, settings, principal, pupil, True)
    org_repo = OrganisationRepository(session)
    if gallery_grew:
        org_repo.bump_gallery_version(org_id)
    for pupil_id, why in biometric_ended.items():
        pupil = by_id[pupil_id]
        result.templates_erased += enrol.erase(session, principal, pupil, reason=why)
        result.publications_taken_down += takedown.redecide_for_pupil(
            session, settings, principal, org_id, pupil_id, trigger=why)
    if biometric_ended:
        # Media they were matched in are looked at again once this commits.
        enqueue(session, RESCREEN_TASK, str(org_id))
    for pupil_id, why in withdrawn_for.items():
        if pupil_id in biometric_ended:
            continue
        result.publications_taken_down += takedown.redecide_for_pupil(
            session, settings, principal, org_id, pupil_id, trigger=why)
    for done, pupil in enumerate(leavers, 1):
        result.templates_erased += repo.template_count(pupil.id)
        result.publications_taken_down += register.set_active(
            session, settings, principal, pupil, False)
        if progress is not None:
            progress("leavers", done, len(leavers))
    audit(session, principal, "import.pupils", f"org:{org_id}",
          {**result.as_json(), "sha256": hashlib.sha256(data).hexdigest()})
    return result
