"""Organisation policy: loaded from a YAML or JSON file, stored with the organisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.orm import Channel
from services.core.errors import InvalidInput


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

    def retention_for(self, purpose: str) -> int:
        return self.retention_by_purpose.get(purpose.strip().lower(), self.retention_days)

    def needs_reenrolment(self, template_age_days: int | None) -> bool:
        """No template at all (None), or the newest is older than reenrol_after_days."""
        return template_age_days is None or template_age_days > self.reenrol_after_days


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
