from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.orm import Channel, DecisionKind, Media, MediaStatus, ReviewDecision, Role
from models.repositories.media import MediaRepository
from services.core.auth import Principal
from services.core.config import Settings
from services.core.policy import policy_of
from services.gate.decide import ChannelDecision, ConsentFacts, decide_media, load_facts
from services.review import decisions

# Failed and flagged media first: they are the ones a person must look at.
_ORDER = {MediaStatus.FAILED: 0, MediaStatus.NEEDS_REVIEW: 1, MediaStatus.QUEUED: 2,
          MediaStatus.SCREENING: 2, MediaStatus.SCREENED: 3}


@dataclass(frozen=True)
class ReviewEntry:
    media: Media
    decisions: dict[str, ChannelDecision]
    facts: ConsentFacts

    @property
    def blocked_channels(self) -> list[str]:
        return [c for c, d in self.decisions.items() if not d.allowed]


def review_queue(session: Session, principal: Principal, *, limit: int = 200) -> list[ReviewEntry]:
    """Every medium blocked for at least one of the organisation's channels."""
    principal.require(Role.SLT, Role.ADMIN)
    policy = policy_of(principal.org.policy)
    channels = [c.value for c in policy.channels]
    media = [
        m for m in MediaRepository(session).list_media(principal.org_id, limit=limit)
        if m.status not in (MediaStatus.PURGED, MediaStatus.REJECTED)
    ]
    facts = load_facts(session, media)
    entries = []
    for m in media:
        decisions = decide_media(session, m, facts=facts, channels=channels)
        if any(not d.allowed for d in decisions.values()):
            entries.append(ReviewEntry(m, decisions, facts))
    entries.sort(key=lambda e: (_ORDER.get(MediaStatus(e.media.status), 9), e.media.created_at))
    return entries


def approve(
    session: Session,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    channels: list[Channel],
    justification: str,
) -> ReviewDecision:
    """`POST /media/{id}/approvals`: the same decision as approving in review, through
    the one approval path (it refuses while screening is queued, running or stale). It
    satisfies the policy's approval rule and the personal-device flag; it never
    overrides an unknown, uncertain or unconsented face."""
    return decisions.record_decision(session, settings, principal, media_id,
                                     decisions.DecisionRequest(
                                         kind=DecisionKind.APPROVE, justification=justification,
                                         channels=tuple(channels)))
