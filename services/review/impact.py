"""What a big register change will take down, asked before it is made: the live copies
the gate would no longer allow once a pupil's consent for a channel is withdrawn, or once
they leave. The same decision (services.gate.decide.decide_publication) on the facts as
they would be, never a second copy of the rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import ConsentStatus, GivenBy, Media, Publication, PublicationConsent, Role
from models.repositories.media import MediaRepository, PublicationRepository
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.policy import policy_of
from services.gate.decide import decide_publication, load_facts


@dataclass(frozen=True)
class LiveCopy:
    publication: Publication
    media: Media


def would_come_down(session: Session, principal: Principal, pupil_id: uuid.UUID, *,
                    channel: str | None = None, leaving: bool = False,
                    biometric_ended: bool = False) -> list[LiveCopy]:
    """Live copies that withdrawing the pupil's consent for `channel` (or their leaving,
    or the end of their face-matching consent) would take down."""
    principal.require(Role.SLT, Role.ADMIN)
    media = MediaRepository(session).media_matching_pupil(principal.org_id, pupil_id)
    live = PublicationRepository(session).active_for_media([m.id for m in media])
    if not live:
        return []
    facts = load_facts(session, media)
    latest = dict(facts.latest)
    by_giver = dict(facts.by_giver)
    if channel is not None:
        # The decision reads each giver's newest record: a withdrawal by either ends it,
        # so the simulated one stands for every giver (channel may be CAPTURE).
        for giver in GivenBy:
            withdrawn = PublicationConsent(
                pupil_id=pupil_id, channel=channel, status=ConsentStatus.WITHDRAWN.value,
                given_by=giver.value, evidence_ref="", recorded_by="", recorded_at=utcnow())
            by_giver[(pupil_id, channel, giver.value)] = withdrawn
            latest[(pupil_id, channel)] = withdrawn
    active = dict(facts.active)
    if leaving:
        active[pupil_id] = False
    biometric = dict(facts.biometric_current)
    if biometric_ended:
        biometric[pupil_id] = False
    future = replace(facts, latest=latest, by_giver=by_giver, active=active,
                     biometric_current=biometric)
    today = local_today(policy_of(principal.org.policy))
    by_id = {m.id: m for m in media}
    out = []
    for p in live:
        now_ok = decide_publication(session, by_id[p.media_id], p, facts=facts, today=today)
        then = decide_publication(session, by_id[p.media_id], p, facts=future, today=today)
        if now_ok.allowed and not then.allowed:
            out.append(LiveCopy(p, by_id[p.media_id]))
    return out


def still_live(session: Session, publication_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these publications are still up (after the change: the report)."""
    repo = PublicationRepository(session)
    found = (repo.get(pid) for pid in publication_ids)
    return {p.id for p in found if p is not None and p.withdrawn_at is None}
