"""Register operations: pupils, consent to publish, consent to face matching, enrolment.

Every change that can end a decision takes the organisation's gate lock first
(services.core.uow), then reports "consent changed" to the takedown service, which
re-decides the pupil's live publications in the same transaction. Services flush; the
request or task wrapper commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
    CAPTURE,
    BiometricConsent,
    BiometricStatus,
    Channel,
    ConsentStatus,
    PublicationConsent,
    Pupil,
    ReferencePhoto,
)
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.biometrics import enrol
from services.core import validate
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import Conflict, InvalidInput, NotFound
from services.core.jobs import enqueue
from services.core.policy import policy_of
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current, consent_in_force
from services.takedown import service as takedown
from storage.base import ObjectStore

RESCREEN_TASK = "consentgate.rescreen_stale"


def get_pupil(session: Session, principal: Principal, pupil_id: uuid.UUID) -> Pupil:
    pupil = PupilRepository(session).get(principal.org_id, pupil_id)
    if pupil is None:
        raise NotFound("no such pupil in your organisation", pupil_id=str(pupil_id))
    return pupil


def create_pupil(
    session: Session,
    principal: Principal,
    *,
    external_id: str,
    given_name: str,
    family_name: str,
    year_group: str,
) -> Pupil:
    # The same checks on every way in (API, pages, CLI imports); widths of the columns.
    for name, value, width in (("external_id", external_id, 64), ("given_name", given_name, 200),
                               ("family_name", family_name, 200),
                               ("year_group", year_group, 32)):
        validate.text(value, field=name, max_length=width)
    repo = PupilRepository(session)
    if repo.get_by_external_id(principal.org_id, external_id) is not None:
        raise Conflict("a pupil with this external id already exists", external_id=external_id)
    try:
        pupil = repo.add(
            Pupil(
                org_id=principal.org_id,
                external_id=external_id,
                given_name=given_name,
                family_name=family_name,
                year_group=year_group,
                active=True,
            )
        )
    except IntegrityError as exc:
        raise Conflict("a pupil with this external id already exists") from exc
    audit(session, principal, "pupil.created", f"pupil:{pupil.id}", {"year_group": year_group})
    return pupil


def _lock_pupil(session: Session, principal: Principal, pupil: Pupil) -> Pupil:
    """Take the gate lock, then read the pupil again: it may have changed while we waited."""
    lock_for_change(session, principal.org_id)
    return get_pupil(session, principal, pupil.id)


def set_active(session: Session, settings: Settings, principal: Principal,
               pupil: Pupil, active: bool) -> int:
    """A pupil who leaves is inactive: their templates go at once, their live publications
    are decided again at once (a leaver is never shown), and media they were matched in
    are looked at again. Returns how many publications were taken down."""
    pupil = _lock_pupil(session, principal, pupil)
    if pupil.active == active:
        return 0
    pupil.active = active
    session.flush()
    audit(session, principal, "pupil.active_changed", f"pupil:{pupil.id}", {"active": active})
    if active:
        # Back at school: the pupil's old matches were made before they left; they are
        # matchable again only from fresh enrolment, and every medium is looked at again.
        OrganisationRepository(session).bump_match_epoch(pupil.org_id)
        _rescreen_after_commit(session, pupil.org_id)
        return 0
    enrol.erase(session, principal, pupil, reason="pupil left")
    taken = takedown.redecide_for_pupil(session, settings, principal, pupil.org_id, pupil.id,
                                        trigger="pupil left")
    _rescreen_after_commit(session, pupil.org_id)
    return taken


@dataclass(frozen=True)
class BiometricOutcome:
    current: bool
    templates_deleted: int
    publications_taken_down: int


def record_biometric(
    session: Session,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    *,
    status: BiometricStatus,
    by: str,
    evidence_ref: str,
) -> BiometricOutcome:
    validate.text(evidence_ref, field="evidence_ref", max_length=500)
    pupil = _lock_pupil(session, principal, pupil)
    repo = PupilRepository(session)
    was_current = biometric_is_current(repo.biometric_history(pupil.id))
    repo.add_biometric(
        BiometricConsent(
            pupil_id=pupil.id,
            status=status.value,
            by=by,
            evidence_ref=evidence_ref,
            recorded_by=principal.actor,
            recorded_at=utcnow(),
        )
    )
    current = biometric_is_current(repo.biometric_history(pupil.id))
    audit(
        session, principal, "biometric_consent.recorded", f"pupil:{pupil.id}",
        {"status": status.value, "by": by, "evidence_ref": evidence_ref, "current": current},
    )
    deleted = taken = 0
    if not current:
        deleted = enrol.erase(session, principal, pupil, reason=f"biometric {status}")
        # Matches made under consent that has now ended no longer justify publication.
        taken = takedown.redecide_for_pupil(session, settings, principal, pupil.org_id,
                                            pupil.id, trigger=f"biometric consent {status}")
        _rescreen_after_commit(session, pupil.org_id)
    elif not was_current:
        # A re-grant revives nothing: old matches were marked for re-screening when the
        # consent ended, and the pupil is matched again only once re-enrolled.
        OrganisationRepository(session).bump_gallery_version(pupil.org_id)
    return BiometricOutcome(current=current, templates_deleted=deleted,
                            publications_taken_down=taken)


def set_publication_consent(
    session: Session,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    channel: Channel,
    *,
    status: ConsentStatus,
    given_by: str,
    evidence_ref: str,
    expires_on: date | None,
) -> tuple[PublicationConsent, int]:
    """Record consent for one channel; returns the record and how many publications the
    change took down."""
    validate.text(evidence_ref, field="evidence_ref", max_length=500)
    pupil = _lock_pupil(session, principal, pupil)
    record = PublicationConsent(
        pupil_id=pupil.id,
        channel=channel.value,
        status=status.value,
        given_by=given_by,
        evidence_ref=evidence_ref,
        recorded_by=principal.actor,
        recorded_at=utcnow(),
        expires_on=expires_on,
    )
    PupilRepository(session).add_consent(record)
    audit(
        session, principal, "consent.recorded", f"pupil:{pupil.id}",
        {"channel": channel.value, "status": status.value, "given_by": given_by,
         "evidence_ref": evidence_ref, "expires_on": expires_on},
    )
    taken = 0
    today = local_today(policy_of(principal.org.policy))
    if status != ConsentStatus.GRANTED:
        # Withdrawn or refused, by a guardian or the pupil: either one's "no" stands.
        taken = takedown.redecide_for_pupil(session, settings, principal, pupil.org_id,
                                            pupil.id,
                                            trigger=f"{channel.value} consent {status.value}")
    elif not consent_in_force(record, today):
        # A grant recorded with an expiry date already past ends consent just the same.
        taken = takedown.redecide_for_pupil(
            session, settings, principal, pupil.org_id, pupil.id,
            trigger=f"{channel.value} consent expired on {expires_on}")
    return record, taken


# Every name a consent can be recorded under: the publication channels, and capture
# (consent to being photographed at all), which is recorded and read the same way.
CONSENT_KINDS = (*(c.value for c in Channel), CAPTURE)


@dataclass(frozen=True)
class ConsentsOutcome:
    records: list[PublicationConsent]
    publications_taken_down: int


def record_consents(
    session: Session,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    statuses: Mapping[str, ConsentStatus],
    *,
    given_by: str,
    evidence_ref: str,
    expires_on: date | None,
) -> ConsentsOutcome:
    """One consent form: a status for each of several channels (and capture) at once,
    from one person, with one evidence reference. All of it lands, or none (one lock,
    one flush); live publications are re-decided once if anything said no."""
    unknown = sorted(set(statuses) - set(CONSENT_KINDS))
    if unknown:
        raise InvalidInput("unknown consent channel", unknown=unknown,
                           allowed=list(CONSENT_KINDS))
    if not statuses:
        raise InvalidInput("the form records no consent: give a status for at least one "
                           "channel", allowed=list(CONSENT_KINDS))
    if not evidence_ref.strip():
        raise InvalidInput("say where the signed form or letter is kept (evidence_ref)")
    pupil = _lock_pupil(session, principal, pupil)
    repo = PupilRepository(session)
    now = utcnow()
    records = []
    for kind in CONSENT_KINDS:
        status = statuses.get(kind)
        if status is None:
            continue
        record = PublicationConsent(
            pupil_id=pupil.id, channel=kind, status=status.value, given_by=given_by,
            evidence_ref=evidence_ref, recorded_by=principal.actor, recorded_at=now,
            expires_on=expires_on,
        )
        repo.add_consent(record)
        records.append(record)
    audit(
        session, principal, "consent.form_recorded", f"pupil:{pupil.id}",
        {"consents": {r.channel: r.status for r in records}, "given_by": given_by,
         "evidence_ref": evidence_ref, "expires_on": expires_on},
    )
    today = local_today(policy_of(principal.org.policy))
    ended = [r.channel for r in records if not consent_in_force(r, today)]
    taken = 0
    if ended:
        taken = takedown.redecide_for_pupil(
            session, settings, principal, pupil.org_id, pupil.id,
            trigger="consent form: " + ", ".join(
                f"{r.channel} {r.status}" for r in records if r.channel in ended))
    return ConsentsOutcome(records=records, publications_taken_down=taken)


def set_capture_consent(
    session: Session,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    *,
    status: ConsentStatus,
    given_by: str,
    evidence_ref: str,
    expires_on: date | None,
) -> tuple[PublicationConsent, int]:
    """Consent to being photographed: the same history and the same re-decision as a
    channel's."""
    outcome = record_consents(session, settings, principal, pupil, {CAPTURE: status},
                              given_by=given_by, evidence_ref=evidence_ref,
                              expires_on=expires_on)
    return outcome.records[0], outcome.publications_taken_down


def add_reference_photo(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    pupil: Pupil,
    data: bytes,
) -> ReferencePhoto:
    """Enrol a reference photo. The template is computed first (slow, no lock held);
    consent and the pupil's active flag are checked again under the gate lock, so an
    enrolment racing a withdrawal either lands before it (and is erased by it) or is
    refused."""
    _enrollable(session, pupil)
    encoding = enrol.compute_template(settings, data)
    pupil = _lock_pupil(session, principal, pupil)
    _enrollable(session, pupil)
    photo = enrol.store_template(session, store, settings, principal, pupil, data, encoding)
    _rescreen_after_commit(session, pupil.org_id)
    return photo


def _enrollable(session: Session, pupil: Pupil) -> None:
    if not biometric_is_current(PupilRepository(session).biometric_history(pupil.id)):
        raise Conflict(
            "no current biometric consent for this pupil: a parent's written consent is "
            "needed before a reference photo can be enrolled, and it must not have been "
            "withdrawn or objected to"
        )
    if not pupil.active:
        raise Conflict("this pupil is marked as left; reference photos cannot be added")


def _rescreen_after_commit(session: Session, org_id: uuid.UUID) -> None:
    """Media screened against the gallery before this change are stale; the re-screen
    dispatcher queues them in priority order once the change is committed."""
    enqueue(session, RESCREEN_TASK, str(org_id))
