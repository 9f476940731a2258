"""Organisation policy: loaded from a YAML or JSON file, stored with the organisation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.orm import Channel
from services.core.errors import InvalidInput


class Purpose(BaseModel):
    """Why images are taken, in the policy's own words, with how long they are kept and the
    channels they may be published on (ArtForms: held "only for as long as necessary for
    the 'purpose'")."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    # Days an image taken for this purpose is kept; None: the policy's retention_days.
    retention_days: int | None = Field(default=None, gt=0, le=3650)
    channels: list[Channel] = Field(default_factory=lambda: list(Channel))

    @property
    def key(self) -> str:
        return purpose_key(self.name)


def purpose_key(text: str) -> str:
    """Purposes match case-insensitively and ignore runs of spaces."""
    return " ".join(text.split()).casefold()


def _default_purposes() -> list[Purpose]:
    # The guidance's own words (Leeds / Harewood / ArtForms).
    return [
        Purpose(name="curriculum", channels=[Channel.DISPLAY, Channel.NEWSLETTER]),
        Purpose(name="extra-school activities"),
        Purpose(name="publicity"),
        Purpose(name="celebrating achievement"),
    ]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    # Days an image is kept, counted from capture (or upload when capture is unknown).
    retention_days: int = Field(default=730, gt=0, le=3650)
    # Per-purpose overrides of retention_days, e.g. {"prospectus": 1095}.
    retention_by_purpose: dict[str, int] = Field(default_factory=dict)
    personal_devices: Literal["forbidden", "with_permission"] = "forbidden"
    slt_approval_required: bool = True
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.WEBSITE, Channel.NEWSLETTER, Channel.DISPLAY]
    )
    # Who may allow personal devices, in the policy's own words (shown to SLT).
    personal_device_permission_from: str = "the headteacher"
    # An SLT approval that clears a face ConsentGate could not identify (unknown or
    # uncertain) takes effect only once a second, different SLT member confirms it.
    second_slt_for_overrides: bool = False
    # Children's faces change: a pupil whose newest enrolment photo is older than this
    # (days) is listed for a new one.
    reenrol_after_days: int = Field(default=365, gt=0, le=3650)
    # What images may be taken for; an upload's purpose must be one of these.
    purposes: list[Purpose] = Field(default_factory=_default_purposes, min_length=1)
    # Harewood: consent "prior to creating any images". When on, a medium in which a
    # matched pupil has no capture consent in force is never publishable on any channel.
    capture_consent_required: bool = False
    # From this school year on (the number in the pupil's year group: "Year 8" is 8) the
    # pupil's own consent is needed as well as a guardian's. None: a guardian's suffices.
    pupil_consent_from_year: int | None = Field(default=None, ge=0, le=14)
    # Every upload must fall within an SLT-approved photography session (its date, its
    # staff, its devices); one that names none is matched to one that covers it, or flagged.
    photography_sessions_required: bool = False
    # IANA time zone of the organisation: a consent's expires_on day ends at midnight here.
    timezone: str = "Europe/London"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("purposes")
    @classmethod
    def _distinct_purposes(cls, value: list[Purpose]) -> list[Purpose]:
        keys = [p.key for p in value]
        if len(set(keys)) != len(keys):
            raise ValueError("purposes must have distinct names")
        return value

    def retention_for(self, purpose: str) -> int:
        found = self.purpose(purpose)
        if found is not None and found.retention_days is not None:
            return found.retention_days
        return self.retention_by_purpose.get(purpose.strip().lower(), self.retention_days)

    def purpose(self, text: str) -> Purpose | None:
        """The listed purpose `text` names (case-insensitively), or None."""
        key = purpose_key(text)
        return next((p for p in self.purposes if p.key == key), None)

    def purpose_names(self) -> list[str]:
        return [p.name for p in self.purposes]

    def pupil_consent_needed(self, year_group: str) -> bool:
        """Is the pupil's own consent needed as well as a guardian's? Year groups without
        a number (Reception, Nursery) are below any year."""
        if self.pupil_consent_from_year is None:
            return False
        year = year_number(year_group)
        return year is not None and year >= self.pupil_consent_from_year

    def needs_reenrolment(self, template_age_days: int | None) -> bool:
        """No template at all (None), or the newest is older than reenrol_after_days."""
        return template_age_days is None or template_age_days > self.reenrol_after_days


def year_number(year_group: str) -> int | None:
    """The school year in a year group as schools write it: "7", "Year 7", "Y7", "Yr 11",
    "7B"; None for Reception, Nursery or anything without a number."""
    match = re.search(r"\d+", year_group)
    return int(match.group()) if match else None


DEFAULT_POLICY = Policy()


def load_policy_file(path: Path) -> Policy:
    text = path.read_text(encoding="utf-8")
    data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return parse_policy(data)


def parse_policy(data: Any) -> Policy:
    try:
        return Policy.model_validate(data or {})
    except ValidationError as exc:
        raise InvalidInput("invalid policy", errors=exc.errors(include_url=False)) from exc


def policy_of(stored: dict[str, Any]) -> Policy:
    return Policy.model_validate(stored)
