"""Plain words for the pages: statuses, audit actions, times. No FastAPI here."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from models.orm import Pupil
from services.gate.reasons import Reason
from services.words import CHANNELS as CHANNELS
from services.words import channel_name as channel_name
from services.words import reason_texts

# The guidance is English; show times as the school's clocks do.
LOCAL = ZoneInfo("Europe/London")

MEDIA_STATUS = {
    "queued": "Waiting for the face check",
    "screening": "Checking faces…",
    "screened": "Checked",
    "needs_review": "Checked: needs a senior leader's review",
    "failed": "Face check failed: a senior leader will review it",
    "rejected": "Rejected and deleted",
    "purged": "Deleted (kept for as long as the policy allows)",
}

# Face statuses, for a teacher. Box colours on the review page follow these.
FACE_STATUS = {
    "consented": "Has consent",
    "unconsented": "No consent",
    "withdrawn": "Consent withdrawn",
    "left": "Has left the school",
    "unknown": "Not recognised",
    "uncertain": "Can't tell who this is",
}

FACE_HELP = {
    "consented": "Recognised as a pupil whose parent or guardian gave consent.",
    "unconsented": "Recognised as a pupil with no consent to publish.",
    "withdrawn": "Recognised as a pupil whose consent has been withdrawn.",
    "left": "Recognised as a pupil who has left the school: never shown.",
    "unknown": "This face doesn't look like any pupil with enrolment photos. It could be a "
               "visitor, an adult, or a pupil who isn't enrolled.",
    "uncertain": "Too small, blurred or turned away to check, or it looks like more than "
                 "one pupil.",
}

ACTIONS = {
    "media.uploaded": "Uploaded a photo or video",
    "media.screened": "Faces checked",
    "media.screening_failed": "Face check failed",
    "media.approved": "Approved",
    "review.approved": "Approved",
    "review.approved_blurred": "Approved a copy with faces blurred",
    "review.rejected": "Rejected and deleted",
    "review.awaiting_second_slt": "Cleared a face; asked a second SLT member to confirm",
    "review.confirmed": "Confirmed as the second SLT member",
    "review.declined": "Declined a decision",
    "publication.created": "Published",
    "publication.refused": "Publishing refused",
    "publication.withdrawn": "Taken down",
    "pupil.created": "Added a pupil",
    "pupil.active_changed": "Changed whether a pupil is at the school",
    "consent.recorded": "Recorded consent to publish",
    "biometric_consent.recorded": "Recorded consent to face matching",
    "biometrics.erased": "Deleted face-matching data",
    "reference_photo.added": "Added an enrolment photo",
    "web.signed_in": "Signed in",
    "media.purged": "Deleted at the end of its retention period",
    "organisation.created": "Set up the organisation",
    "token.created": "Made a sign-in key",
}

DETAIL_NAMES = {
    "justification": "Why",
    "note": "Note",
    "channels": "Where",
    "channel": "Where",
    "reason": "Reason",
    "reasons": "Reasons",
    "status": "Status",
    "evidence_ref": "Evidence",
    "given_by": "Given by",
    "expires_on": "Until",
    "requested_by": "Asked by",
    "faces_cleared": "Faces cleared",
    "faces_blurred": "Faces blurred",
    "event": "Event",
    "purpose": "Purpose",
    "device": "Device",
    "faces": "Faces found",
    "unresolved": "Faces not identified",
    "error": "Error",
}


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LOCAL).strftime("%-d %b %Y, %H:%M")


def photo_age(days: int) -> str:
    """'3 weeks', '14 months', '2 years': how old an enrolment photo is, roughly."""
    if days < 14:
        return "1 day" if days == 1 else f"{days} days"
    if days < 61:
        return f"{days // 7} weeks"
    months = days * 12 // 365
    if months < 24:
        return f"{months} months"
    return f"{days // 365} years"


def reenrol_note(photos: int, age_days: int | None) -> str:
    """What the register says about a pupil whose enrolment needs renewing."""
    if photos == 0 or age_days is None:
        return "No photo on file — add one"
    return f"Photo on file is {photo_age(age_days)} old — take a new one"


def person(actor: str) -> str:
    """'slt:Mrs Khan' -> 'Mrs Khan': how the audit trail names someone, for people."""
    return actor.split(":", 1)[1] if ":" in actor else actor


def reasons_for_people(reasons: list[Reason], pupils: dict[uuid.UUID, Pupil]) -> list[str]:
    """The gate's reasons in words, naming pupils (the API names them by id)."""
    names = {str(p.id): f"{p.given_name} {p.family_name}" for p in pupils.values()}
    return reason_texts(reasons, names)


def detail_text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(detail_text(v) for v in value) if value else "none"
    if value is None:
        return "—"
    return str(value)


def likeness(distance: float | None) -> str:
    """How alike a matched face is to the pupil's enrolment photos, without jargon."""
    if distance is None:
        return ""
    if distance < 0.4:
        return "a very close likeness to their enrolment photos"
    return "a close likeness to their enrolment photos"


# A pupil's consent for one channel (or capture) now, on the pages: the states of
# services.gate.rules.consent_state. "yes" is the one word that means it may be used.
CONSENT_WORDS = {
    "in_force": "yes",
    "not_returned": "not returned",
    "refused": "refused",
    "withdrawn": "withdrawn",
    "expired": "expired",
    "awaiting_pupil": "pupil's own consent needed",
    "awaiting_guardian": "parent's consent needed",
}


def consent_word(state: str) -> str:
    return CONSENT_WORDS.get(state, state.replace("_", " "))
