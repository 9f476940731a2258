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
}


def channel_name(channel: str) -> str:
    return CHANNELS.get(channel, channel.replace("_", " "))


def _faces(n: int, video: object = False) -> str:
    if video:
        return "1 person" if n == 1 else f"{n} people"
    return "1 face" if n == 1 else f"{n} faces"


_TEXT: dict[str, Callable[[dict[str, object], Callable[[object], str]], str]] = {
    rc.CHANNEL_DISABLED: lambda d, _: (
        f"the {d['channel']} channel is not enabled in your organisation's policy"),
    rc.SCREENING_PENDING: lambda d, _: "screening has not finished yet",
    rc.SCREENING_FAILED: lambda d, _: (
        f"screening failed ({screening_failure(d)}); SLT must review it"),
    rc.PURGED: lambda d, _: "this image has been deleted under the retention policy",
    rc.REJECTED: lambda d, _: "SLT rejected this image and it has been deleted",
    rc.UNEXPECTED_STATUS: lambda d, _: f"unexpected status {d.get('status')}",
    rc.STALE: lambda d, _: (
        "the register changed since this was checked; it is being checked again"),
    rc.VIDEO_TRUNCATED: lambda d, _: (
        f"truncated: {d.get('frames')} of {d.get('claimed')} frames readable; SLT must "
        "decide"),
    rc.PUPIL_LEFT: lambda d, who: f"{who(d['pupil_id'])}: has left the school",
    rc.BIOMETRIC_ENDED: lambda d, who: (
        f"{who(d['pupil_id'])}: biometric consent has ended, so the match can no longer be "
        "relied on"),
    rc.NO_CONSENT: lambda d, who: f"{who(d['pupil_id'])}: no consent recorded for {d['channel']}",
    rc.CONSENT_WITHDRAWN: lambda d, who: (
        f"{who(d['pupil_id'])}: consent for {d['channel']} was withdrawn"),
    rc.CONSENT_EXPIRED: lambda d, who: (
        f"{who(d['pupil_id'])}: consent for {d['channel']} expired on {d['expires_on']}"),
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
        f"SLT approval for {d['channel']} is required and has not been given"),
    rc.REDACTION_NEEDS_APPROVAL: lambda d, _: (
        f"a blurred copy needs SLT approval for {d['channel']}, and it has not been given"),
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
