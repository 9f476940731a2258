"""The one clock. Every stored time is UTC; organisations see their own time zone
(services.core.clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Added to the real time. Only tests move it (stateful tests of expiry), through
# `travel`; it is a process-wide setting, like the real clock.
_offset = timedelta(0)


def utcnow() -> datetime:
    """Timezone-aware UTC now."""
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move this process's clock by `delta` (tests of expiry)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
