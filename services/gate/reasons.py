"""Why the gate blocks: codes with data. Words for people are made at the edge
(services/words.py), in one place; nothing here or below parses them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every code the gate can give, with the data each carries.
CHANNEL_DISABLED = "channel_disabled"  # channel
SCREENING_PENDING = "screening_pending"
SCREENING_FAILED = "screening_failed"  # error
PURGED = "purged"
REJECTED = "rejected"
UNEXPECTED_STATUS = "unexpected_status"  # status
STALE = "register_changed"  # the register changed since this was checked
VIDEO_TRUNCATED = "video_truncated"  # frames, claimed
PUPIL_LEFT = "pupil_left"  # pupil_id
BIOMETRIC_ENDED = "biometric_consent_ended"  # pupil_id
NO_CONSENT = "no_consent"  # pupil_id, channel
CONSENT_WITHDRAWN = "consent_withdrawn"  # pupil_id, channel
CONSENT_EXPIRED = "consent_expired"  # pupil_id, channel, expires_on
CONSENT_REFUSED = "consent_refused"  # pupil_id, channel, given_by
# The pupil's own consent is needed at their age (policy pupil_consent_from_year).
PUPIL_CONSENT_MISSING = "pupil_consent_missing"  # pupil_id, channel
# Recognised, with no consent in force to being photographed at all; blocks every channel,
# no approval lifts it (suggested decision: delete).
NO_CAPTURE_CONSENT = "no_capture_consent"  # pupil_id, state
# Photography sessions (flags set at upload; SLT approval lifts them).
OUTSIDE_SESSION = "outside_session"  # captured_on, session_id (None: named none)
NOT_ON_SESSION = "not_on_session"  # session_id
SESSION_DEVICE = "session_device_not_allowed"  # session_id, device
NOT_FOR_PURPOSE = "not_for_purpose"  # purpose, channel
FACES_UNKNOWN = "faces_unknown"  # count, video
FACES_UNCERTAIN = "faces_uncertain"  # count, video, candidates (pupil ids)
PERSONAL_DEVICE_FORBIDDEN = "personal_device_forbidden"
PERSONAL_DEVICE_PERMISSION = "personal_device_needs_permission"  # permission_from
SLT_APPROVAL_REQUIRED = "slt_approval_required"  # channel
REDACTION_NEEDS_APPROVAL = "redaction_needs_approval"  # channel
REDACTION_CHECK_FAILED = "redaction_check_failed"  # what, box, channel, frame (videos)
CHANGED_WHILE_PUBLISHING = "changed_while_publishing"  # frames, screened (videos)
# SLT named a face; a re-screen could not find it again safely (services.screen.names),
# so the name is not applied and SLT must name it again. Set in media.screen_flags.
NAMED_FACE_LOST = "named_face_lost"  # identification, named_pupil_id, why

# Why screening failed (media.failure_code with media.failure_data), carried as `failure`
# and its data in SCREENING_FAILED.
SCREENING_CRASHED = "screening_crashed"  # attempts: deliveries that never ended
SCREENING_TIMED_OUT = "screening_timed_out"  # limit_s
STORAGE_UNAVAILABLE = "storage_unavailable"  # transient, since (ISO time)
DATABASE_UNAVAILABLE = "database_unavailable"  # transient, since
SCREENING_ERROR = "screening_error"  # the file was refused or the engine failed
# Failures that say nothing about the file: re-screened once the store answers again.
TRANSIENT_FAILURES = (STORAGE_UNAVAILABLE, DATABASE_UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.data}

    @property
    def pupil_id(self) -> str | None:
        value = self.data.get("pupil_id")
        return str(value) if value is not None else None
