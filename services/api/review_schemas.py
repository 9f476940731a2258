"""API v1 bodies of SLT review. Same contract as `schemas`: add, never rename."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.orm import Channel, DecisionKind, DecisionState
from services.api.forms import text_check
from services.api.schemas import FaceStatus, MediaOut, ReviewItem


class FlagOut(BaseModel):
    code: str = Field(description="screening_failed, not_screened, unknown_face, "
                      "uncertain_face, withdrawn_consent, no_consent, personal_device, "
                      "single_pupil or awaiting_second")
    text: str


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: DecisionKind
    channels: list[Channel] = Field(default_factory=list)
    justification: Annotated[str, Field(min_length=10, max_length=5000),
                             text_check(5000)]
    cleared_faces: list[uuid.UUID] = Field(
        default_factory=list,
        description="unknown or uncertain faces SLT has checked and clears for the channels",
    )


class SecondIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str, Field(min_length=10, max_length=5000), text_check(5000)]


class DecisionOut(BaseModel):
    id: uuid.UUID
    media_id: uuid.UUID
    kind: DecisionKind
    channels: list[Channel]
    cleared_faces: list[uuid.UUID]
    justification: str
    state: DecisionState = Field(description="in_force, awaiting_second or declined")
    decided_by: str
    created_at: datetime
    second_by: str | None
    second_note: str | None
    second_at: datetime | None


class ConsentCellOut(BaseModel):
    allowed: bool
    text: str


class ReviewFaceOut(BaseModel):
    id: uuid.UUID
    number: int
    frame: int
    box: tuple[int, int, int, int] = Field(description="top, right, bottom, left in pixels")
    status: FaceStatus
    pupil_id: uuid.UUID | None
    pupil_name: str | None
    consents: dict[str, ConsentCellOut]
    cleared_for: list[str]
    shown_on: list[str]
    crop_url: str


class ReviewTrackOut(BaseModel):
    """One person in a video: the faces of one track across frames. Every face of a
    track has the same match decision; clearing any face of it clears the track."""

    track: int | None = Field(description="the engine's track number (None: a face with "
                              "no track, which is a track of its own)")
    number: int = Field(description="1, 2, ... in order of first appearance")
    face_ids: list[uuid.UUID] = Field(description="every face of the track, in frame order")
    representative_face_id: uuid.UUID = Field(
        description="the track's largest face; send it in cleared_faces to clear the track")
    first_frame: int
    last_frame: int
    start_seconds: float | None = Field(
        description="first_frame / the video's frame rate (None if it cannot be read)")
    end_seconds: float | None
    status: FaceStatus = Field(description="the most restrictive status of its faces")
    pupil_id: uuid.UUID | None
    pupil_name: str | None
    consents: dict[str, ConsentCellOut]
    cleared_for: list[str] = Field(description="channels on which every face is cleared")
    shown_on: list[str] = Field(description="channels on which every face may be shown")
    thumbnail_urls: list[str] = Field(
        description="face crops of its first, largest and last face (distinct)")


class ReviewDetailOut(BaseModel):
    media: MediaOut
    flags: list[FlagOut]
    faces: list[ReviewFaceOut]
    decisions: list[DecisionOut]
    picture_url: str
    tracks: list[ReviewTrackOut] = Field(
        default_factory=list, description="videos: the faces by person; empty for a photo")
    fps: float | None = Field(default=None, description="videos: frames per second")
    preview_url: str | None = Field(
        default=None, description="videos: a clean WebM re-encode to play for review")


class IdentifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pupil_id: uuid.UUID
    justification: str = Field(min_length=10, max_length=5000)
    add_as_template: bool = Field(
        default=False,
        description="also use this face to recognise the pupil in future (an extra "
        "template). Only under current biometric consent and if the face passes the "
        "enrolment gate; a refusal leaves the identification standing and comes back in "
        "`template`.")


class TemplateOut(BaseModel):
    """What became of `add_as_template`. The identification stands either way."""

    added: bool
    code: str | None = Field(
        default=None, description="why not: biometric_consent_not_current, pupil_left, "
        "no_reference_template, template_limit, template_refused (the enrolment gate; "
        "`details.gate` says which check), template_inconsistent, template_not_from_photo, "
        "face_is_another_pupil or identification_awaiting_second")
    reason: str | None = None
    details: dict[str, object] = Field(default_factory=dict)
    templates: int | None = Field(default=None, description="the pupil's templates now")


class IdentificationOut(BaseModel):
    id: uuid.UUID
    media_id: uuid.UUID
    face_id: uuid.UUID
    pupil_id: uuid.UUID
    previous_pupil_id: uuid.UUID | None
    state: str = Field(description="in_force, or awaiting_second (a correction the policy "
                       "wants a second SLT member to confirm)")
    justification: str
    decided_by: str
    second_by: str | None
    created_at: datetime
    publications_taken_down: int = 0
    template: TemplateOut | None = Field(
        default=None, description="only when add_as_template was asked for")


class ChannelStateOut(BaseModel):
    state: str = Field(description="published, allowed, decided (SLT decided it) or blocked "
                       "(SLT must look at it)")
    reason_codes: list[dict[str, object]] = Field(
        default_factory=list, description="the gate's reasons, as codes with data")


class QueueItemOut(ReviewItem):
    """One medium of the work queue. `media`, `blocked_channels` (every channel the gate
    blocks now) and `flags` are as before; the rest is the queue's view of it."""

    waiting: bool = Field(description="a channel it was uploaded for is blocked and "
                          "undecided: it is in the queue")
    targets: list[str] = Field(description="the channels it was uploaded for (its purpose)")
    states: dict[str, ChannelStateOut] = Field(description="one state per target channel")
    file_name: str | None = Field(default=None, description="the uploaded file's name")
    uploaded_by: str = Field(default="", description="the uploader's name")
