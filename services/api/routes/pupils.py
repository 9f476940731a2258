from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from models.clock import utcnow
from models.orm import Channel, Pupil, Role
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.api import schemas
from services.api.consent_schemas import ConsentFormIn
from services.api.deps import CurrentPrincipal, SessionDep, SettingsDep, StoreDep
from services.core.clock import local_today
from services.core.errors import TooLarge
from services.core.policy import Policy, policy_of
from services.gate.decide import consent_of, register_facts
from services.gate.rules import biometric_is_current, consent_in_force
from services.register import service as register

router = APIRouter(prefix="/api/v1/pupils", tags=["consent register"])

# Reference photos are portraits; anything bigger is not one.
MAX_REFERENCE_BYTES = 25 * 1024 * 1024


def template_age_days(newest: datetime | None, now: datetime) -> int | None:
    """Whole days since a pupil's newest template was made (None: no template)."""
    return None if newest is None else max(0, (now - newest).days)


def _out(session: SessionDep, pupil: Pupil) -> schemas.PupilOut:
    repo = PupilRepository(session)
    now = utcnow()
    today = now.date()
    latest = repo.latest_consents([pupil.id])
    org = OrganisationRepository(session).get(pupil.org_id)
    policy = policy_of(org.policy if org is not None else {})
    age = template_age_days(repo.newest_template_times([pupil.id]).get(pupil.id), now)
    return schemas.PupilOut(
        id=pupil.id, external_id=pupil.external_id, given_name=pupil.given_name,
        family_name=pupil.family_name, year_group=pupil.year_group, active=pupil.active,
        reg_group=pupil.reg_group,
        biometric_consent=biometric_is_current(repo.biometric_history(pupil.id)),
        templates=repo.template_count(pupil.id),
        template_age_days=age,
        needs_reenrolment=policy.needs_reenrolment(age),
        consents={
            channel: schemas.ConsentOut(
                channel=channel, status=r.status, given_by=r.given_by,
                evidence_ref=r.evidence_ref, recorded_by=r.recorded_by,
                recorded_at=r.recorded_at, expires_on=r.expires_on,
                in_force=consent_in_force(r, today),
            )
            for (_, channel), r in latest.items()
        },
        **_states(session, pupil, policy),
    )


def _states(session: SessionDep, pupil: Pupil, policy: Policy) -> dict[str, Any]:
    """Each channel's and capture's consent state, as the gate reads it today."""
    facts = register_facts(session, [pupil.id])
    today = local_today(policy)
    return {
        "consent_states": {kind: consent_of(facts, pupil.id, kind, today)[0]
                           for kind in register.CONSENT_KINDS},
        "pupil_consent_needed": facts.needs_pupil.get(pupil.id, False),
    }


@router.post("", status_code=status.HTTP_201_CREATED)
def create_pupil(body: schemas.PupilIn, session: SessionDep,
                 principal: CurrentPrincipal) -> schemas.PupilOut:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.create_pupil(session, principal, **body.model_dump())
    return _out(session, pupil)


# A page of the register; a school's whole roll is a few pages of the maximum.
DEFAULT_PAGE = 100
MAX_PAGE = 500


@router.get("")
def list_pupils(
    session: SessionDep, principal: CurrentPrincipal, response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
    q: Annotated[str | None, Query(max_length=100, description="name or UPN")] = None,
    year_group: Annotated[str | None, Query(max_length=32)] = None,
    reg_group: Annotated[str | None, Query(max_length=32)] = None,
) -> list[schemas.PupilOut]:
    """One page in name order; the X-Total-Count header says how many match in all."""
    principal.require(Role.SLT, Role.ADMIN)
    found, total = PupilRepository(session).search(
        principal.org_id, q=q, year_group=year_group, reg_group=reg_group, limit=limit,
        offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return out_many(session, principal.org.policy, found)


def out_many(session: SessionDep, org_policy: dict[str, Any],
             found: list[Pupil]) -> list[schemas.PupilOut]:
    """PupilOut for a page of pupils in a fixed number of queries (not several per
    pupil)."""
    repo = PupilRepository(session)
    ids = [p.id for p in found]
    now = utcnow()
    policy = policy_of(org_policy)
    today = local_today(policy)
    latest = repo.latest_consents(ids)
    histories = repo.biometric_histories(ids)
    newest = repo.newest_template_times(ids)
    counts = repo.template_counts(ids)
    # Each channel's and capture's state as the gate reads it (one read for the page).
    facts = register_facts(session, ids)
    by_pupil: dict[uuid.UUID, dict[str, Any]] = {}
    for (pid, channel), r in latest.items():
        by_pupil.setdefault(pid, {})[channel] = r
    out = []
    for pupil in found:
        age = template_age_days(newest.get(pupil.id), now)
        out.append(schemas.PupilOut(
            id=pupil.id, external_id=pupil.external_id, given_name=pupil.given_name,
            family_name=pupil.family_name, year_group=pupil.year_group, active=pupil.active,
            reg_group=pupil.reg_group,
            biometric_consent=biometric_is_current(histories.get(pupil.id, [])),
            templates=counts.get(pupil.id, 0), template_age_days=age,
            needs_reenrolment=policy.needs_reenrolment(age),
            consents={
                channel: schemas.ConsentOut(
                    channel=channel, status=r.status, given_by=r.given_by,
                    evidence_ref=r.evidence_ref, recorded_by=r.recorded_by,
                    recorded_at=r.recorded_at, expires_on=r.expires_on,
                    in_force=consent_in_force(r, today),
                )
                for channel, r in by_pupil.get(pupil.id, {}).items()
            },
            consent_states={kind: consent_of(facts, pupil.id, kind, today)[0]
                            for kind in register.CONSENT_KINDS},
            pupil_consent_needed=facts.needs_pupil.get(pupil.id, False),
        ))
    return out


@router.get("/{pupil_id}")
def get_pupil(pupil_id: uuid.UUID, session: SessionDep,
              principal: CurrentPrincipal) -> schemas.PupilOut:
    principal.require(Role.SLT, Role.ADMIN)
    return _out(session, register.get_pupil(session, principal, pupil_id))


@router.patch("/{pupil_id}")
def set_active(pupil_id: uuid.UUID, body: schemas.ActiveIn, session: SessionDep,
               settings: SettingsDep, principal: CurrentPrincipal) -> schemas.PupilOut:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    register.set_active(session, settings, principal, pupil, body.active)
    return _out(session, register.get_pupil(session, principal, pupil_id))


@router.post("/{pupil_id}/biometric-consent", status_code=status.HTTP_201_CREATED)
def biometric_consent(pupil_id: uuid.UUID, body: schemas.BiometricIn, session: SessionDep,
                      settings: SettingsDep, principal: CurrentPrincipal
                      ) -> schemas.BiometricOut:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    outcome = register.record_biometric(
        session, settings, principal, pupil, status=body.status, by=body.by.value,
        evidence_ref=body.evidence_ref,
    )
    return schemas.BiometricOut(pupil_id=pupil.id, biometric_consent=outcome.current,
                                templates_deleted=outcome.templates_deleted)


@router.post("/{pupil_id}/reference-photos", status_code=status.HTTP_201_CREATED)
def add_reference_photo(
    pupil_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="a clear photo of the pupil alone")],
    session: SessionDep, store: StoreDep, settings: SettingsDep, principal: CurrentPrincipal,
) -> schemas.ReferencePhotoOut:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    data = file.file.read(MAX_REFERENCE_BYTES + 1)
    if len(data) > MAX_REFERENCE_BYTES:
        raise TooLarge("reference photo is larger than 25 MiB")
    photo = register.add_reference_photo(session, store, settings, principal, pupil, data)
    return schemas.ReferencePhotoOut(id=photo.id, pupil_id=pupil.id, created_at=photo.created_at)


@router.put("/{pupil_id}/consents")
def consent_form(pupil_id: uuid.UUID, body: ConsentFormIn, session: SessionDep,
                 settings: SettingsDep, principal: CurrentPrincipal) -> schemas.PupilOut:
    """One form for every channel (and "capture") at once, with one evidence reference.
    An unknown channel answers 422 listing the allowed ones, and nothing is recorded."""
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    register.record_consents(session, settings, principal, pupil, body.consents,
                             given_by=body.given_by.value, evidence_ref=body.evidence_ref,
                             expires_on=body.expires_on)
    return _out(session, register.get_pupil(session, principal, pupil_id))


# Registered before /consents/{channel}: "capture" is not a publication channel.
@router.put("/{pupil_id}/consents/capture")
def set_capture_consent(pupil_id: uuid.UUID, body: schemas.ConsentIn, session: SessionDep,
                        settings: SettingsDep, principal: CurrentPrincipal
                        ) -> schemas.PupilOut:
    """Consent to being photographed at all, recorded and read like a channel's."""
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    register.set_capture_consent(
        session, settings, principal, pupil, status=body.status,
        given_by=body.given_by.value, evidence_ref=body.evidence_ref, expires_on=body.expires_on,
    )
    return _out(session, register.get_pupil(session, principal, pupil_id))


@router.put("/{pupil_id}/consents/{channel}")
def set_consent(pupil_id: uuid.UUID, channel: Channel, body: schemas.ConsentIn,
                session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> schemas.PupilOut:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    register.set_publication_consent(
        session, settings, principal, pupil, channel, status=body.status,
        given_by=body.given_by.value, evidence_ref=body.evidence_ref, expires_on=body.expires_on,
    )
    return _out(session, register.get_pupil(session, principal, pupil_id))


@router.get("/{pupil_id}/consents")
def consent_history(pupil_id: uuid.UUID, session: SessionDep,
                    principal: CurrentPrincipal) -> list[schemas.ConsentOut]:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = register.get_pupil(session, principal, pupil_id)
    today = utcnow().date()
    return [
        schemas.ConsentOut(
            channel=r.channel, status=r.status, given_by=r.given_by, evidence_ref=r.evidence_ref,
            recorded_by=r.recorded_by, recorded_at=r.recorded_at, expires_on=r.expires_on,
            in_force=consent_in_force(r, today),
        )
        for r in PupilRepository(session).consent_history(pupil.id)
    ]
