"""The work queue's rules that need no server: which channels a purpose names (so
"social media" is the `social_media` channel), and the state of each channel."""

from __future__ import annotations

from services.core.policy import policy_of
from services.review.queue import target_channels

POLICY = policy_of({"name": "School", "retention_days": 730,
                    "channels": ["website", "newsletter", "display", "social_media", "press"]})


def test_a_purpose_names_its_channels_in_peoples_words() -> None:
    assert target_channels("social media", POLICY) == ["social_media"]
    assert target_channels("Website and newsletter", POLICY) == ["website", "newsletter"]
    assert target_channels("social_media", POLICY) == ["social_media"]
    assert target_channels("the display board in the hall", POLICY) == ["display"]


def test_a_purpose_naming_no_channel_must_be_decided_everywhere() -> None:
    # Fail closed: a medium uploaded "for the archive" is in the queue until SLT have
    # decided every channel, never silently left undecided.
    assert target_channels("archive", POLICY) == [c.value for c in POLICY.channels]
    assert target_channels("", POLICY) == [c.value for c in POLICY.channels]
