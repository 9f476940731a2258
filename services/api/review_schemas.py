"""API v1 bodies of SLT review. Same contract as `schemas`: add, never rename."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.orm import Channel, DecisionKind
from services.api.schemas import MediaOut


class FlagOut(BaseModel):
    code: str = Field(description="screening_failed, not_screened, unknown_face, "
                      "uncertain_face, withdrawn_consent, no_consent, personal_device, "
                      "single_pupil or awaiting_second")
    text: str


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: DecisionKind
    channels: list[Channel] = Field(default_factory=list)
    justification: str = Field(min_length=10, max_length=5000)
    cleared_faces: list[uuid.UUID] = Field(
        default_factory=list,
        description="unknown or uncertain faces SLT has checked and clears for the channels",
    )


class SecondIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(min_length=10, max_length=5000)


class DecisionOut(BaseModel):
    id: uuid.UUID
    media_id: uuid.UUID
    kind: str
    channels: list[str]
    cleared_faces: list[uuid.UUID]
    justification: str
    state: str = Field(description="in_force, awaiting_second or declined")
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
    status: str
    pupil_id: uuid.UUID | None
    pupil_name: str | None
    consents: dict[str, ConsentCellOut]
    cleared_for: list[str]
    shown_on: list[str]
    crop_url: str


class ReviewDetailOut(BaseModel):
    media: MediaOut
    flags: list[FlagOut]
    faces: list[ReviewFaceOut]
    decisions: list[DecisionOut]
    picture_url: str
