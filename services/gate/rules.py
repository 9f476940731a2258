"""Pure rules for reading consent histories. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from models.orm import (
    BiometricBy,
    BiometricConsent,
    BiometricStatus,
    ConsentStatus,
    GivenBy,
    PublicationConsent,
)


def biometric_is_current(history: Sequence[BiometricConsent]) -> bool:
    """Protection of Freedoms Act 2012 s.26: a parent's written consent is needed, and an
    objection or withdrawal by any parent, or by the pupil, overrides it.

    `history` is in insertion order. A parent's newest record must be a grant;
    the pupil's newest record, if any, must not be an objection or withdrawal.
    Any parent objection after the last grant also stops processing.
    """
    last_parent: BiometricConsent | None = None
    last_pupil: BiometricConsent | None = None
    for record in history:
        if record.by == BiometricBy.PARENT:
            last_parent = record
        else:
            last_pupil = record
    if last_parent is None or last_parent.status != BiometricStatus.GRANTED:
        return False
    return last_pupil is None or last_pupil.status == BiometricStatus.GRANTED


def consent_in_force(record: PublicationConsent | None, today: date) -> bool:
    if record is None or record.status != ConsentStatus.GRANTED:
        return False
    return record.expires_on is None or today <= record.expires_on


# What a pupil's consent for one channel (or for capture) amounts to today.
IN_FORCE = "in_force"
NOT_RETURNED = "not_returned"
REFUSED = "refused"
WITHDRAWN = "withdrawn"
EXPIRED = "expired"
# A guardian's consent is in force but the pupil's own, which the policy needs at their
# age, is not recorded (or the other way round).
AWAITING_PUPIL = "awaiting_pupil"
AWAITING_GUARDIAN = "awaiting_guardian"


def consent_state(
    by_giver: Mapping[str, PublicationConsent], needs_pupil: bool, today: date
) -> tuple[str, PublicationConsent | None]:
    """The state of one pupil's consent for one channel, from the newest record each giver
    (guardian, pupil) made, and the record that decides it.

    A refusal or withdrawal by either stands until that same person grants again: a
    guardian cannot consent over a pupil's own "no", nor the other way round. Otherwise
    one grant in force suffices, unless the policy needs the pupil's own as well as a
    guardian's (`needs_pupil`), when both must be in force.
    """
    records = [by_giver[g] for g in (GivenBy.GUARDIAN, GivenBy.PUPIL) if g in by_giver]
    for status in (ConsentStatus.WITHDRAWN, ConsentStatus.REFUSED):
        for record in records:
            if record.status == status:
                return (WITHDRAWN if status == ConsentStatus.WITHDRAWN else REFUSED), record
    guardian = by_giver.get(GivenBy.GUARDIAN)
    pupil = by_giver.get(GivenBy.PUPIL)
    if needs_pupil:
        for record in records:
            if not consent_in_force(record, today):
                return EXPIRED, record
        if guardian is None and pupil is None:
            return NOT_RETURNED, None
        if pupil is None:
            return AWAITING_PUPIL, guardian
        if guardian is None:
            return AWAITING_GUARDIAN, pupil
        return IN_FORCE, guardian
    in_force = [r for r in records if consent_in_force(r, today)]
    if in_force:
        return IN_FORCE, in_force[0]
    if records:
        return EXPIRED, records[0]
    return NOT_RETURNED, None
