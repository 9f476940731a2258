"""Request and response bodies for consent forms, capture consent and photography
sessions (issue 10)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from models.orm import ConsentStatus, Device, GivenBy


class ConsentFormIn(BaseModel):
    """One consent form: a status per channel (and "capture", consent to being
    photographed), from one person, with one evidence reference. Channels left out are
    unchanged; a channel never recorded is "not returned"."""

    model_config = ConfigDict(extra="forbid")

    consents: dict[str, ConsentStatus] = Field(min_length=1)
    given_by: GivenBy
    evidence_ref: str = Field(min_length=1, max_length=500)
    expires_on: date | None = None


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=200)
    dates: list[date] = Field(min_length=1)
    # API token ids of the staff who may take photographs at it.
    staff: list[uuid.UUID] = Field(min_length=1)
    devices: list[Device] = Field(min_length=1)


class SessionOut(BaseModel):
    id: uuid.UUID
    event: str
    purpose: str
    # Days images taken at it are kept (the purpose's retention).
    retention_days: int
    dates: list[date]
    staff: list[uuid.UUID]
    devices: list[str]
    created_by: str
    created_at: datetime


class PersonOut(BaseModel):
    id: uuid.UUID
    name: str
    role: str
