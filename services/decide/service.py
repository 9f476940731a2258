"""The decision, computed at the moment it is asked for, never cached.

A medium may go to channel C only if screening finished without error, every
face is matched to a pupil whose biometric consent is current and whose
consent for C is granted and unexpired today, and SLT approval is present
where the organisation's policy requires it (or the upload came from a
personal device). Everything else (unknown, uncertain, withdrawn, failed,
still queued) blocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
    Channel,
    ConsentStatus,
    Device,
    Face,
    MatchStatus,
    Media,
    MediaStatus,
    PublicationConsent,
)
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from services.errors import NotFound
from services.policy import Policy, policy_of
from services.register.consent import biometric_is_current, consent_in_force


@dataclass(frozen=True, slots=True)
class ChannelDecision:
    allowed: bool
    reasons: list[str]


@dataclass(frozen=True)
class ConsentFacts:
    """Consent state of the pupils matched in some media, read once for a batch."""

    latest: dict[tuple[uuid.UUID, str], PublicationConsent] = field(default_factory=dict)
    biometric_current: dict[uuid.UUID, bool] = field(default_factory=dict)
    approved: dict[uuid.UUID, set[str]] = field(default_factory=dict)


def load_facts(session: Session, media: Sequence[Media]) -> ConsentFacts:
    pupil_ids = {f.pupil_id for m in media for f in m.faces if f.pupil_id is not None}
    repo = PupilRepository(session)
    return ConsentFacts(
        latest=repo.latest_consents(pupil_ids),
        biometric_current={p: biometric_is_current(repo.biometric_history(p)) for p in pupil_ids},
        approved=MediaRepository(session).approved_channels([m.id for m in media]),
    )


def decide_channel(
    media: Media, policy: Policy, facts: ConsentFacts, channel: str, today: date
) -> ChannelDecision:
    reasons: list[str] = []
    if channel not in {c.value for c in policy.channels}:
        reasons.append(f"the {channel} channel is not enabled in your organisation's policy")

    if media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        reasons.append("screening has not finished yet")
    elif media.status == MediaStatus.FAILED:
        reasons.append(f"screening failed ({media.error or 'unknown error'}); SLT must review it")
    elif media.status == MediaStatus.PURGED:
        reasons.append("this image has been deleted under the retention policy")
    elif media.status not in (MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW):
        reasons.append(f"unexpected status {media.status}")
    else:
        reasons.extend(_face_reasons(media, facts, channel, today))

    approved = channel in facts.approved.get(media.id, set())
    if media.device == Device.PERSONAL and not approved:
        if policy.personal_devices == "forbidden":
            reasons.append(
                "uploaded from a personal device, which your policy forbids; "
                "SLT must review and approve it"
            )
        else:
            reasons.append(
                "uploaded from a personal device; needs permission from "
                f"{policy.personal_device_permission_from} (SLT approval)"
            )
    if policy.slt_approval_required and not approved:
        reasons.append(f"SLT approval for {channel} is required and has not been given")
    return ChannelDecision(allowed=not reasons, reasons=reasons)


def _face_reasons(media: Media, facts: ConsentFacts, channel: str, today: date) -> list[str]:
    reasons: list[str] = []
    unknown = uncertain = 0
    seen_pupils: set[uuid.UUID] = set()
    for face in media.faces:
        if face.match_status == MatchStatus.UNKNOWN or face.pupil_id is None:
            if face.match_status == MatchStatus.UNCERTAIN:
                uncertain += 1
            else:
                unknown += 1
            continue
        if face.match_status != MatchStatus.MATCHED:
            uncertain += 1
            continue
        if face.pupil_id in seen_pupils:
            continue
        seen_pupils.add(face.pupil_id)
        who = f"pupil {face.pupil_id}"
        if not facts.biometric_current.get(face.pupil_id, False):
            reasons.append(
                f"{who}: biometric consent has ended, so the match can no longer be relied on"
            )
            continue
        record = facts.latest.get((face.pupil_id, channel))
        if record is None:
            reasons.append(f"{who}: no consent recorded for {channel}")
        elif record.status == ConsentStatus.WITHDRAWN:
            reasons.append(f"{who}: consent for {channel} was withdrawn")
        elif not consent_in_force(record, today):
            reasons.append(f"{who}: consent for {channel} expired on {record.expires_on}")
    noun = "frames show" if media.kind == "video" else "image shows"
    if unknown:
        reasons.append(
            f"the {noun} {unknown} face(s) not recognised as any pupil with consent"
        )
    if uncertain:
        reasons.append(
            f"the {noun} {uncertain} face(s) too small, blurred, turned or too alike "
            "to another pupil to identify safely"
        )
    return reasons


def decide_media(
    session: Session,
    media: Media,
    *,
    facts: ConsentFacts | None = None,
    channels: Sequence[str] | None = None,
    today: date | None = None,
) -> dict[str, ChannelDecision]:
    policy = policy_of(media_policy(session, media))
    facts = facts if facts is not None else load_facts(session, [media])
    today = today or utcnow().date()
    wanted = channels or [c.value for c in Channel]
    return {c: decide_channel(media, policy, facts, c, today) for c in wanted}


def media_policy(session: Session, media: Media) -> dict[str, Any]:
    org = OrganisationRepository(session).get(media.org_id)
    if org is None:
        raise NotFound("organisation of this medium no longer exists")
    return org.policy


def face_status(face: Face, facts: ConsentFacts, policy: Policy, today: date) -> str:
    """One word per face for people: consented, unconsented, withdrawn, unknown, uncertain.

    consented   - matched, biometric consent current, consent in force for at
                  least one enabled channel and withdrawn for none
    withdrawn   - matched, but some consent (or biometric consent) was withdrawn
    unconsented - matched, no consent in force for any enabled channel
    """
    if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
        return face.match_status if face.match_status != MatchStatus.MATCHED else "uncertain"
    if not facts.biometric_current.get(face.pupil_id, False):
        return "withdrawn"
    records = [facts.latest.get((face.pupil_id, c.value)) for c in policy.channels]
    if any(r is not None and r.status == ConsentStatus.WITHDRAWN for r in records):
        return "withdrawn"
    if any(consent_in_force(r, today) for r in records):
        return "consented"
    return "unconsented"
