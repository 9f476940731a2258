"""Request and response bodies of API v1. Field names are a contract with the
website publishing pipeline: add freely, never rename."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.orm import (
    BiometricBy,
    BiometricStatus,
    Channel,
    ConsentStatus,
    GivenBy,
    MediaKind,
    MediaStatus,
)
from services.api.forms import text_check

# One word per face for people (services.gate.decide.face_status).
FaceStatus = Literal["consented", "unconsented", "withdrawn", "left", "unknown", "uncertain"]


class PupilIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: Annotated[str, Field(min_length=1, max_length=64), text_check(64)]
    given_name: Annotated[str, Field(min_length=1, max_length=200), text_check(200)]
    family_name: Annotated[str, Field(min_length=1, max_length=200), text_check(200)]
    year_group: Annotated[str, Field(min_length=1, max_length=32), text_check(32)]


class ConsentOut(BaseModel):
    # A publication channel, or "capture" (consent to being photographed at all).
    channel: Channel | Literal["capture"]
    status: ConsentStatus
    given_by: GivenBy
    evidence_ref: str
    recorded_by: str
    recorded_at: datetime
    expires_on: date | None
    in_force: bool


class PupilOut(BaseModel):
    id: uuid.UUID
    external_id: str
    given_name: str
    family_name: str
    year_group: str
    active: bool
    biometric_consent: bool
    templates: int
    # Whole days since the newest template was made; None without any template.
    template_age_days: int | None
    # No template, or the newest is older than the policy's reenrol_after_days.
    needs_reenrolment: bool
    consents: dict[str, ConsentOut]
    # Registration group from the MIS import; None where never imported.
    reg_group: str | None = None
    # Every channel and "capture": in_force, not_returned, refused, withdrawn, expired,
    # awaiting_pupil (the pupil's own is needed too) or awaiting_guardian.
    consent_states: dict[str, str] = Field(default_factory=dict)
    # The policy needs the pupil's own consent as well as a guardian's at their age.
    pupil_consent_needed: bool = False


class BiometricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: BiometricStatus
    by: BiometricBy
    evidence_ref: Annotated[str, Field(min_length=1, max_length=500), text_check(500)]


class BiometricOut(BaseModel):
    pupil_id: uuid.UUID
    biometric_consent: bool
    templates_deleted: int


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ConsentStatus
    given_by: GivenBy
    evidence_ref: Annotated[str, Field(min_length=1, max_length=500), text_check(500)]
    expires_on: date | None = None


class ActiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


class ReferencePhotoOut(BaseModel):
    id: uuid.UUID
    pupil_id: uuid.UUID
    created_at: datetime


class CandidateOut(BaseModel):
    pupil_id: uuid.UUID
    distance: float


class FaceOut(BaseModel):
    box: tuple[int, int, int, int] = Field(description="top, right, bottom, left in pixels")
    frame: int
    pupil_id: uuid.UUID | None
    distance: float | None = Field(
        description="how different the face is from the pupil's reference photos (lower is "
        "more alike; the match threshold is set in CONSENTGATE_MATCH_THRESHOLD)"
    )
    status: FaceStatus
    # Pupils this face is close to without being clearly one of them (never cleared as
    # "nobody"; their consent still counts): ids and distances, nearest first.
    candidates: list[CandidateOut] = Field(default_factory=list)
    # Videos: faces of one person across frames share a track number.
    track: int | None = None


class ReasonOut(BaseModel):
    """Why the gate blocks, for programs: a stable code and its data (pupil_id, channel,
    count ...). `reasons` beside it carries the same in words."""

    model_config = ConfigDict(extra="allow")

    code: str


class ChannelDecisionOut(BaseModel):
    allowed: bool
    reasons: list[str]
    reason_codes: list[ReasonOut] = Field(default_factory=list)


class PublicationOut(BaseModel):
    id: uuid.UUID
    media_id: uuid.UUID
    channel: Channel
    url: str
    published_at: datetime
    published_by: str
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    redacted: bool = Field(default=False, description="faces without consent are blurred in it")


class MediaOut(BaseModel):
    id: uuid.UUID
    kind: MediaKind
    status: MediaStatus
    event: str
    purpose: str
    device: str
    captured_on: date | None
    uploaded_at: datetime
    uploader: str
    error: str | None
    faces: list[FaceOut]
    channels: dict[str, ChannelDecisionOut]
    retention_until: date
    publications: list[PublicationOut]
    # The photography session the upload named or was matched to (None: none).
    session_id: uuid.UUID | None = None


class UploadOut(BaseModel):
    id: uuid.UUID
    status: MediaStatus
    notices: list[str]


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    redact: bool = Field(
        default=False,
        description="publish a copy with every face not allowed on the channel blurred "
        "(photos only; needs SLT approval for the channel)",
    )


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channels: list[Channel] = Field(min_length=1)
    justification: Annotated[str, Field(min_length=10, max_length=5000),
                             text_check(5000)]


class ReviewFlagOut(BaseModel):
    code: str
    text: str


class ReviewItem(BaseModel):
    media: MediaOut
    blocked_channels: list[str]
    flags: list[ReviewFlagOut] = Field(default_factory=list)


class RescreenOut(BaseModel):
    # Media with faces that are stale: blocked until screened again (published ones first).
    stale: int
    screened_with_faces: int


class PublisherMediaOut(BaseModel):
    """A medium as the publisher role sees it: only what publishing needs. No faces,
    pupil ids, distances, uploader, event, file details or error text; the reasons
    say why a channel is blocked without naming anyone."""

    id: uuid.UUID
    kind: str
    status: str
    channels: dict[str, ChannelDecisionOut]
    publications: list[PublicationOut]
