"""Words for people, made at the edge and only here: the API's `reasons` texts and the
pages' sentences come from the gate's codes with data (services/gate/reasons.py).

API texts name pupils by id (the contract with the publishing pipeline); pages pass
`names` and get the pupils' names instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.gate import reasons as rc
from services.gate.reasons import Reason

CHANNELS = {
    "website": "School website",
    "social_media": "Social media",
    "newsletter": "Newsletter",
    "press": "Press",
    "display": "Displays on the premises",
    # Not a channel: consent to being photographed at all, shown beside them.
    "capture": "Being photographed at all",
}


# A pupil's consent for one channel (or to being photographed), for people; keys are the
# states of services.gate.rules.consent_state.
CONSENT_STATES = {
    "in_force": "granted",
    "not_returned": "not returned",
    "refused": "refused",
    "withdrawn": "withdrawn",
    "expired": "expired",
    "awaiting_pupil": "pupil's own consent needed",
    "awaiting_guardian": "guardian's consent needed",
}
CAPTURE_STATES = {
    "not_returned": "no consent returned",
    "refused": "consent refused",
    "withdrawn": "consent withdrawn",
    "expired": "consent expired",
    "awaiting_pupil": "the pupil's own consent missing",
    "awaiting_guardian": "a guardian's consent missing",
}


def consent_state_name(state: str) -> str:
    return CONSENT_STATES.get(state, state.replace("_", " "))


def channel_name(channel: str) -> str:
    return CHANNELS.get(channel, channel.replace("_", " "))


def _faces(n: int, video: object = False) -> str:
    if video:
        return "1 person" if n == 1 else f"{n} people"
    return "1 face" if n == 1 else f"{n} faces"


# Why a named face was not found again (services.screen.names lost reasons).
_NAME_LOST = {
    "matched_other_pupil": "it is now recognised as a different pupil",
    "no_overlap": "no face is where the named face was",
    "ambiguous_overlap": "more than one face is where the named face was",
    "file_changed": "the file is not the one named",
    "no_boxes": "where the face was is not known",
}

_TEXT: dict[str, Callable[[dict[str, object], Callable[[object], str]], str]] = {
    rc.CHANNEL_DISABLED: lambda d, _: (
        f"{channel_name(str(d['channel']))} is not enabled in your organisation's policy"),
    rc.SCREENING_PENDING: lambda d, _: "screening has not finished yet",
    rc.SCREENING_FAILED: lambda d, _: (
        f"screening failed ({screening_failure(d)}); SLT must review it"),
    rc.PURGED: lambda d, _: "this image has been deleted under the retention policy",
    rc.REJECTED: lambda d, _: "SLT rejected this image and it has been deleted",
    rc.UNEXPECTED_STATUS: lambda d, _: f"unexpected status {d.get('status')}",
    rc.STALE: lambda d, _: (
        "the register changed since this was checked; it is being checked again"),
    rc.NAMED_FACE_LOST: lambda d, who: (
        f"a face SLT named as {who(d['named_pupil_id'])} could not be found again safely "
        f"when the photo was checked again ({_NAME_LOST.get(str(d.get('why')), 'changed')}); "
        "SLT must name it again"),
    rc.VIDEO_TRUNCATED: lambda d, _: (
        f"truncated: {d.get('frames')} of {d.get('claimed')} frames readable; SLT must "
        "decide"),
    rc.PUPIL_LEFT: lambda d, who: f"{who(d['pupil_id'])}: has left the school",
    rc.BIOMETRIC_ENDED: lambda d, who: (
        f"{who(d['pupil_id'])}: biometric consent has ended, so the match can no longer be "
        "relied on"),
    rc.NO_CONSENT: lambda d, who: (
        f"{who(d['pupil_id'])}: no consent recorded for {channel_name(str(d['channel']))}"
        + (" from a parent or guardian (the pupil's own is recorded)"
           if d.get("missing") == "guardian" else " (form not returned)")),
    rc.CONSENT_WITHDRAWN: lambda d, who: (
        f"{who(d['pupil_id'])}: consent for {channel_name(str(d['channel']))} was withdrawn"),
    rc.CONSENT_EXPIRED: lambda d, who: (
        f"{who(d['pupil_id'])}: consent for {channel_name(str(d['channel']))} expired on "
        f"{d['expires_on']}"),
    rc.CONSENT_REFUSED: lambda d, who: (
        f"{who(d['pupil_id'])}: consent for {channel_name(str(d['channel']))} was refused"
        + (" by the pupil" if d.get("given_by") == "pupil" else "")),
    rc.PUPIL_CONSENT_MISSING: lambda d, who: (
        f"{who(d['pupil_id'])}: the pupil's own consent for "
        f"{channel_name(str(d['channel']))} is needed at their age and is not recorded"),
    rc.NO_CAPTURE_CONSENT: lambda d, who: (
        f"{who(d['pupil_id'])}: {CAPTURE_STATES.get(str(d.get('state')), 'no consent')} "
        "to being photographed, so this image should not exist; it cannot be published "
        "anywhere (suggested: delete it)"),
    rc.OUTSIDE_SESSION: lambda d, _: (
        f"taken on {d.get('captured_on')}, outside any approved photography session for "
        "this member of staff; SLT must decide"),
    rc.NOT_ON_SESSION: lambda d, _: (
        "the uploader is not one of the staff approved for this photography session; "
        "SLT must decide"),
    rc.SESSION_DEVICE: lambda d, _: (
        f"taken on a {d.get('device')} device, which this photography session does not "
        "allow; SLT must decide"),
    rc.NOT_FOR_PURPOSE: lambda d, _: (
        f"taken for {d['purpose']}, which is not a purpose for "
        f"{channel_name(str(d['channel']))}; SLT must approve this use"),
    rc.FACES_UNKNOWN: lambda d, _: (
        f"the {'frames show' if d.get('video') else 'image shows'} "
        f"{_faces(int(str(d['count'])), d.get('video'))} not recognised as any pupil with "
        "consent"),
    rc.FACES_UNCERTAIN: lambda d, _: (
        f"the {'frames show' if d.get('video') else 'image shows'} "
        f"{_faces(int(str(d['count'])), d.get('video'))} too small, blurred, turned or too "
        "alike to another pupil to identify safely"),
    rc.PERSONAL_DEVICE_FORBIDDEN: lambda d, _: (
        "uploaded from a personal device, which your policy forbids; SLT must review and "
        "approve it"),
    rc.PERSONAL_DEVICE_PERMISSION: lambda d, _: (
        f"uploaded from a personal device; needs permission from {d['permission_from']} "
        "(SLT approval)"),
    rc.SLT_APPROVAL_REQUIRED: lambda d, _: (
        f"SLT approval for {channel_name(str(d['channel']))} is required and has not been "
        "given"),
    rc.REDACTION_NEEDS_APPROVAL: lambda d, _: (
        f"a blurred copy needs SLT approval for {channel_name(str(d['channel']))}, and it has "
        "not been given"),
    rc.REDACTION_CHECK_FAILED: lambda d, _: (
        f"after blurring, the check still found {d['what']}, not blurred, at "
        f"{d['left']}-{d['right']} px across and {d['top']}-{d['bottom']} px down"
        + (f" in frame {d['frame']}" if "frame" in d else "")),
    rc.CHANGED_WHILE_PUBLISHING: lambda d, _: (
        "the faces or the register changed while the copy was being made; try again"),
}

_WHAT = {
    "matched_unconsented": "a pupil without consent for {channel}",
    "unknown": "a face not recognised as any pupil",
    "uncertain": "a face that could not be identified",
}


def reason_text(reason: Reason, names: Mapping[str, str] | None = None) -> str:
    def who(pupil_id: object) -> str:
        if names is not None:
            return names.get(str(pupil_id), "a pupil")
        return f"pupil {pupil_id}"

    data = dict(reason.data)
    if reason.code == rc.REDACTION_CHECK_FAILED:
        data["what"] = _WHAT.get(str(data.get("what")), "a face").format(
            channel=data.get("channel", ""))
    make = _TEXT.get(reason.code)
    return make(data, who) if make else reason.code.replace("_", " ")


def reason_texts(reasons: list[Reason], names: Mapping[str, str] | None = None) -> list[str]:
    return [reason_text(r, names) for r in reasons]


# --- bulk enrolment (issue 10): why a reference photo was not enrolled ---------------

_PHOTO_REFUSALS: dict[str, Callable[[Mapping[str, object]], str]] = {
    "no_biometric_consent": lambda d: (
        "no biometric consent: a parent's written consent to face matching is needed "
        "first, and it must not have been withdrawn or objected to"),
    "no_face": lambda d: "no face found in this photo",
    "several_faces": lambda d: (
        f"two or more faces ({d.get('faces', 2)}): use a photo of the pupil alone"),
    "unclear_face": lambda d: "no clear face: use a clear, front-on photo",
    "too_small": lambda d: (
        f"the face is too small ({d.get('face_px')} px tall; at least "
        f"{d.get('min_face_px')} px needed): use a larger or closer photo"),
    "blurred": lambda d: "too blurred or too dark: use a sharp, well-lit photo",
    "turned_away": lambda d: "the face is turned away: use a photo looking at the camera",
    "left": lambda d: "this pupil is marked as left",
    "bad_name": lambda d: "the file is not named <UPN>.jpg, <UPN>_2.jpg or .png",
    "too_large": lambda d: "the file is larger than 25 MiB",
    "undecodable": lambda d: "the file is not a photo that can be read",
    "unsupported_media_type": lambda d: "the file is not a JPEG or PNG photo",
    "unusable": lambda d: "this photo could not be used; try another",
}


def photo_refusal_text(code: str, data: Mapping[str, object]) -> str:
    words = _PHOTO_REFUSALS.get(code)
    return words(data) if words is not None else code.replace("_", " ")


PHOTO_RESULTS = {
    "enrolled": "enrolled",
    "refused": "refused",
    "unknown_upn": "no pupil with this UPN in the register",
    "already_enrolled": "already enrolled (the same photo)",
}


def _times(n: object) -> str:
    return "once" if n == 1 else f"{n} times"


_FAILURES: dict[str, Callable[[Mapping[str, object]], str]] = {
    rc.SCREENING_CRASHED: lambda d: f"this file crashed the screening {_times(d.get('attempts'))}",
    rc.SCREENING_TIMED_OUT: lambda d: (
        f"screening took longer than the {d.get('limit_s')} s time limit"),
    rc.STORAGE_UNAVAILABLE: lambda d: (
        "the file store did not answer for over an hour; it is screened again automatically "
        "once the store answers"),
    rc.DATABASE_UNAVAILABLE: lambda d: (
        "the database did not answer for over an hour; it is screened again automatically"),
}


def screening_failure(data: Mapping[str, object]) -> str:
    """Why a medium's screening failed, in words: from its failure code and data (a
    SCREENING_FAILED reason's data, or {"failure": media.failure_code, **failure_data}),
    else the stored error text."""
    code = data.get("failure")
    words = _FAILURES.get(code) if isinstance(code, str) else None
    if words is not None:
        return words(data)
    return str(data.get("error") or "unknown error")
