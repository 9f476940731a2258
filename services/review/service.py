from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Approval, Channel, Media, MediaStatus, Role
from models.repositories.media import MediaRepository
from services.audit import record as audit
from services.auth import Principal
from services.decide.service import ChannelDecision, ConsentFacts, decide_media, load_facts
from services.policy import policy_of
from services.publish.service import get_media

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
    principal: Principal,
    media_id: uuid.UUID,
    channels: list[Channel],
    justification: str,
) -> list[Approval]:
    """Record SLT approval. It satisfies the policy's approval rule and the personal-device
    flag; it never overrides an unknown, uncertain or unconsented face."""
    principal.require(Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    repo = MediaRepository(session)
    approvals = []
    for channel in channels:
        approval = Approval(
            media_id=media.id,
            channel=channel.value,
            approved_by=principal.token_id,
            approver_name=principal.name,
            justification=justification,
            created_at=utcnow(),
        )
        repo.add_approval(approval)
        approvals.append(approval)
    audit(session, principal, "media.approved", f"media:{media.id}",
          {"channels": [c.value for c in channels], "justification": justification})
    return approvals
