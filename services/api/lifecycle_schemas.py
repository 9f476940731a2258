"""API v1 bodies of the consent lifecycle. Same contract as `schemas`: add, never rename."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.orm import Channel, DeliveryStatus, MediaKind, MediaStatus
from services.api.forms import text_check
from services.api.schemas import PublicationOut


class TakedownOut(BaseModel):
    publication_id: uuid.UUID
    media_id: uuid.UUID
    channel: Channel
    url: str
    published_at: datetime
    taken_down_at: datetime
    reason: str | None
    # Pass the last one you saw as `after=` to get every later takedown.
    cursor: int


class WebhookAttemptOut(BaseModel):
    number: int
    at: datetime
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID
    event: str
    publication_id: uuid.UUID | None
    status: DeliveryStatus = Field(
        description="pending, delivered or failed (every attempt failed)")
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[WebhookAttemptOut]


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Annotated[str, Field(min_length=5, max_length=2000), text_check(2000)]


class LegalHoldOut(BaseModel):
    id: uuid.UUID
    media_id: uuid.UUID
    reason: str
    set_by: str
    set_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None


class LegalHoldsOut(BaseModel):
    active: LegalHoldOut | None
    history: list[LegalHoldOut]


class PupilMediumOut(BaseModel):
    media_id: uuid.UUID
    kind: MediaKind
    status: MediaStatus
    event: str
    purpose: str
    captured_on: date | None
    uploaded_at: datetime
    retention_until: date
    matched_faces: int
    publications: list[PublicationOut] = Field(description="live and withdrawn")


class SubjectAccessOut(BaseModel):
    pupil_id: uuid.UUID
    external_id: str
    media: list[PupilMediumOut]
