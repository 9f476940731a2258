"""Dates as the organisation's clocks show them.

Consent given "until 31 July" ends when 31 July ends where the school is, not at
midnight UTC (in UK summer time that is an hour later than it should be)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from models.clock import utcnow
from services.core.policy import Policy


def local_today(policy: Policy, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(policy.timezone)).date()
