"""Plain words for the pages: statuses, audit actions, times. No FastAPI here."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from models.orm import Pupil
from services.core.errors import ConsentGateError, Forbidden
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
    "review.face_identified": "Named the pupil in a face",
    "review.identify_awaiting_second": ("Asked to correct who a face is; waiting for a "
                                        "second SLT member"),
    "template.added_from_face": "Taught face matching a pupil's face from a named photo",
    "review.template_refused": "Asked to learn a named face; it was not learnt",
    "consent.form_recorded": "Recorded a consent form",
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
    "pupil": "Pupil named",
    "previous_pupil": "Was matched to",
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


# Issue 10 (import and keys): added here rather than inside the table above, so the
# lines other changes add to it do not collide.
ACTIONS.update({
    "pupil.updated": "Updated a pupil from the MIS import",
    "import.pupils": "Imported the register from the MIS",
    "import.reference_photos": "Imported enrolment photos",
    "token.revoked": "Revoked a sign-in key",
})
DETAIL_NAMES.update({
    "created": "Added",
    "updated": "Updated",
    "unchanged": "Unchanged",
    "left": "Marked as left",
    "consents_recorded": "Consents recorded",
    "web_sessions_ended": "Sessions ended",
})


# ---------------------------------------------------------------- the review work queue

# One state per channel, as SLT and staff both see it.
CHANNEL_STATE = {
    "published": "Published",
    "allowed": "Allowed",
    "decided": "Decided",
    "blocked": "Blocked",
}

# The review queue's reason filter: short names for the gate's codes.
REASON_LABELS = {
    "channel_disabled": "Place not enabled",
    "screening_pending": "Still being checked",
    "screening_failed": "Face check failed",
    "register_changed": "Being checked again",
    "video_truncated": "Video partly unreadable",
    "named_face_lost": "Named face needs naming again",
    "pupil_left": "Pupil has left",
    "biometric_consent_ended": "Face-matching consent ended",
    "no_consent": "No consent recorded",
    "consent_withdrawn": "Consent withdrawn",
    "consent_expired": "Consent expired",
    "faces_unknown": "Someone not recognised",
    "faces_uncertain": "Someone not identified safely",
    "personal_device_forbidden": "Personal device (not allowed)",
    "personal_device_needs_permission": "Personal device",
    "slt_approval_required": "Needs SLT approval",
}

BULK_DONE = {"approve": "Approved", "redact": "Approved with faces blurred",
             "reject": "Rejected and deleted"}
BULK_ASK = {"approve": "Approve", "redact": "Blur and approve", "reject": "Reject and delete"}


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code.replace("_", " ").capitalize())


def kind_word(kind: str) -> str:
    return "Video" if kind == "video" else "Photo"


def photos(n: int) -> str:
    return "1 photo" if n == 1 else f"{n} photos"


def bulk_title(action: str, done: int, refused: int) -> str:
    text = f"{BULK_DONE[action]}: {photos(done)}."
    if refused:
        text += f" {photos(refused)} could not be changed (see below)."
    return text


def taken_down_count(n: int) -> str:
    if n == 0:
        return "Nothing had to be taken down."
    return f"{photos(n).capitalize()} taken down."


def taken_down_line(label: str, channel: str) -> str:
    return f"Taken down from {channel_name(channel)}: {label}"


def faces_count(n: int) -> str:
    return "1 face" if n == 1 else f"{n} faces"


def actor(value: str) -> str:
    """How the audit log names who did something: a person by name, and ConsentGate
    itself for what it does on its own (screening, consent re-checks, the command line)."""
    role, _, name = value.partition(":")
    if role == "system" or not name:
        return "ConsentGate (automatic)"
    return name


def audit_detail(key: str, value: object, names: dict[str, str]) -> str:
    """One audit detail in words: places by name, pupils by name, faces counted."""
    if key in ("channel", "channels"):
        values = value if isinstance(value, list) else [value]
        return ", ".join(channel_name(str(v)) for v in values) if values else "none"
    if key in ("faces_cleared", "faces_blurred") and isinstance(value, list):
        return faces_count(len(value)) if value else "none"
    if key in ("pupil", "previous_pupil") and value is not None:
        return names.get(f"pupil:{value}", "a pupil")
    if key == "status" and isinstance(value, str):
        return value.replace("_", " ")
    return detail_text(value)


ROLE_WORDS = {"staff": "staff", "slt": "senior leaders (SLT)", "admin": "administrators",
              "publisher": "the website pipeline"}


def error_for_people(exc: ConsentGateError) -> str:
    """A domain error as a page says it: roles in words, never their codes."""
    if isinstance(exc, Forbidden) and exc.message.startswith("this needs one of the roles"):
        return ("Only senior leaders (SLT) and administrators can do this. Ask one of them "
                "if it needs doing.")
    return exc.message


def biometric_report(status: str, deleted: int, taken: int) -> str:
    what = "Objection recorded." if status == "objected" else "Face-matching consent withdrawn."
    photos_part = ("No enrolment photos were on file." if deleted == 0 else
                   f"{deleted} enrolment photo{'' if deleted == 1 else 's'} deleted.")
    return f"{what} {photos_part} {taken_down_count(taken)}"


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


# Why a named face was not (or cannot be) used to recognise the pupil in future: the
# error_code of services.biometrics.enrol.add_face_as_template's refusals.
_NOT_LEARNT = {
    "biometric_consent_not_current": (
        "there is no current consent to face matching for {name}, and the law (Protection "
        "of Freedoms Act 2012) lets ConsentGate learn a child's face only with it"),
    "pupil_left": "{name} has left the school",
    "no_reference_template": (
        "{name} has no enrolment photo yet, and a face from an event can only add to one"),
    "template_limit": "{name} already has as many face templates as allowed",
    "template_inconsistent": (
        "this face is not clearly the same person as {name}'s enrolment photos, and "
        "learning it could let someone else's photos pass under {name}'s consent"),
    "template_not_from_photo": "faces are learnt only from photos, not from videos",
    "face_is_another_pupil": "the face is still recognised as another pupil",
    "identification_awaiting_second": (
        "the naming waits for a second SLT member; it can be learnt once it counts"),
}
_GATE = {
    "too_small": "the face is too small",
    "blurred": "the face is blurred",
    "turned_away": "the face is turned away",
}


def not_learnt(code: str | None, name: str, gate: object = None) -> str:
    """Why a face was not used to recognise ``name`` in future, in words."""
    if code == "template_refused":
        what = _GATE.get(str(gate), "the face is not clear enough")
        return f"{what} to recognise {name} from"
    return _NOT_LEARNT.get(code or "", "it could not be learnt").format(name=name)


def learnt_line(name: str) -> str:
    return (f"From now on ConsentGate also uses this face to recognise {name}. Photos already "
            "checked are being checked again.")


def not_learnt_line(code: str | None, name: str, gate: object = None) -> str:
    return (f"Not used to recognise {name} in future: {not_learnt(code, name, gate)}. "
            "The naming stands.")


# A key's or a person's role on the pages (keys, sessions): one person's role, in words.
ROLE_NAMES = {"staff": "staff", "slt": "senior leader (SLT)", "admin": "administrator",
              "publisher": "website pipeline"}
DEVICE_WORDS = {"school": "school cameras and tablets", "personal": "personal phones or cameras"}
PHOTO_RESULT_WORDS = {"enrolled": "enrolled", "refused": "refused",
                      "unknown_upn": "not on the register",
                      "already_enrolled": "already enrolled"}


def _code(value: object) -> str:
    """An enum member or its value, as the code string."""
    return str(getattr(value, "value", value))


def role_name(role: object) -> str:
    code = _code(role)
    return ROLE_NAMES.get(code, code.replace("_", " "))


def device_word(device: object) -> str:
    code = _code(device)
    return DEVICE_WORDS.get(code, code.replace("_", " "))


def photo_result_word(result: object) -> str:
    code = _code(result)
    return PHOTO_RESULT_WORDS.get(code, code.replace("_", " "))


# Audit actions recorded since the list above was written (issue 11: the audit log showed
# e.g. "session.created").
ACTIONS.update({
    "session.created": "Approved a photography session",
    "legal_hold.set": "Put a photo on legal hold (kept past its retention)",
    "legal_hold.released": "Released a photo's legal hold",
    "media.requeued": "Sent a photo to be checked again",
    "publication.taken_down": "Taken down",
    "subject_access.listed": "Listed a pupil's data (subject access request)",
    "templates.reenrol_started": "Started re-learning faces with a new face-matching model",
    "templates.reenrolled": "Re-learnt a pupil's face with the new model",
    "templates.reenrol_finished": "Finished re-learning faces with the new model",
    "templates.reenrol_failed": "Could not re-learn a pupil's face with the new model",
    "webhook.configured": "Set up the website's take-down notice",
    "webhook.removed": "Removed the website's take-down notice",
    "webhook.delivery_failed": "Could not send a take-down notice to the website",
})

# What an audit entry is about, when it is not a photo or a named pupil: the kind part of
# its target ("org:…", "token:…").
TARGET_WORDS = {"org": "the school", "token": "a sign-in key",
                "session": "a photography session", "pupil": "a pupil",
                "media": "a photo", "decision": "a decision"}


def target_word(target: str) -> str:
    kind = target.split(":", 1)[0]
    return TARGET_WORDS.get(kind, kind.replace("_", " "))


def audit_detail_words(key: str, value: object, names: dict[str, str]) -> str:
    """audit_detail, with devices in words too."""
    if key == "device" and isinstance(value, str):
        return device_word(value)
    return audit_detail(key, value, names)


# Which kind of file an import preview found (services.imports.pupils' format codes).
IMPORT_FORMATS = {"sims": "a SIMS export", "arbor": "an Arbor export",
                  "consentgate": "ConsentGate's template"}


def import_format(code: str) -> str:
    return IMPORT_FORMATS.get(code, f"a {code} export")
