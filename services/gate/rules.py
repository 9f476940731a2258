"""Pure rules for reading consent histories. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from models.orm import (
    BiometricBy,
    BiometricConsent,
    BiometricStatus,
    ConsentStatus,
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
