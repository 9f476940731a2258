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
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
    Channel,
    ConsentStatus,
    DecisionKind,
    Device,
    Face,
    MatchStatus,
    Media,
    MediaKind,
    MediaStatus,
    Publication,
    PublicationConsent,
)
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.pupils import PupilRepository
from models.repositories.review import ReviewRepository
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
    # Unknown or uncertain faces SLT cleared (decision in force): face id -> channels.
    cleared: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    # Channels SLT approved for a blurred copy only, per medium.
    approved_redacted: dict[uuid.UUID, set[str]] = field(default_factory=dict)


def load_facts(session: Session, media: Sequence[Media]) -> ConsentFacts:
    pupil_ids = {f.pupil_id for m in media for f in m.faces if f.pupil_id is not None}
    repo = PupilRepository(session)
    cleared: dict[uuid.UUID, set[str]] = {}
    approved_redacted: dict[uuid.UUID, set[str]] = {}
    for decision in ReviewRepository(session).in_force([m.id for m in media]):
        for face_id in decision.cleared_faces:
            cleared.setdefault(uuid.UUID(face_id), set()).update(decision.channels)
        if decision.kind == DecisionKind.REDACT:
            approved_redacted.setdefault(decision.media_id, set()).update(decision.channels)
    return ConsentFacts(
        latest=repo.latest_consents(pupil_ids),
        biometric_current={p: biometric_is_current(repo.biometric_history(p)) for p in pupil_ids},
        approved=MediaRepository(session).approved_channels([m.id for m in media]),
        cleared=cleared,
        approved_redacted=approved_redacted,
    )


def decide_channel(
    media: Media, policy: Policy, facts: ConsentFacts, channel: str, today: date,
    *, blurred: Collection[uuid.UUID] | None = None,
) -> ChannelDecision:
    """`blurred` decides a redacted copy: the faces in it are blurred and do not count,
    and SLT approval of a blurred copy counts as approval."""
    reasons: list[str] = []
    if channel not in {c.value for c in policy.channels}:
        reasons.append(f"the {channel} channel is not enabled in your organisation's policy")
    if blurred is not None and media.kind == MediaKind.VIDEO:
        reasons.append("faces in videos cannot be blurred yet; a video is published only "
                       "when every face in it has consent")

    if media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        reasons.append("screening has not finished yet")
    elif media.status == MediaStatus.FAILED:
        reasons.append(f"screening failed ({media.error or 'unknown error'}); SLT must review it")
    elif media.status == MediaStatus.PURGED:
        reasons.append("this image has been deleted under the retention policy")
    elif media.status == MediaStatus.REJECTED:
        reasons.append("SLT rejected this image and it has been deleted")
    elif media.status not in (MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW):
        reasons.append(f"unexpected status {media.status}")
    else:
        reasons.extend(_face_reasons(media, facts, channel, today, frozenset(blurred or ())))

    approved = channel in facts.approved.get(media.id, set()) or (
        blurred is not None and channel in facts.approved_redacted.get(media.id, set())
    )
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


def _face_reasons(media: Media, facts: ConsentFacts, channel: str, today: date,
                  blurred: frozenset[uuid.UUID]) -> list[str]:
    reasons: list[str] = []
    unknown = uncertain = 0
    seen_pupils: set[uuid.UUID] = set()
    for face in media.faces:
        if face.id in blurred or _cleared(face, facts, channel):
            continue
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


def _cleared(face: Face, facts: ConsentFacts, channel: str) -> bool:
    """SLT cleared this face for the channel. Only a face nobody could identify can be
    cleared: a recognised pupil's own consent always decides."""
    return face.match_status != MatchStatus.MATCHED and channel in facts.cleared.get(
        face.id, set()
    )


def face_allowed(face: Face, facts: ConsentFacts, channel: str, today: date) -> bool:
    """May this face be shown, unblurred, on the channel today? The per-face form of
    `_face_reasons`: everything it would object to is not allowed."""
    if _cleared(face, facts, channel):
        return True
    if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
        return False
    if not facts.biometric_current.get(face.pupil_id, False):
        return False
    return consent_in_force(facts.latest.get((face.pupil_id, channel)), today)


def decide_media(
    session: Session,
    media: Media,
    *,
    facts: ConsentFacts | None = None,
    channels: Sequence[str] | None = None,
    today: date | None = None,
    blurred: Collection[uuid.UUID] | None = None,
) -> dict[str, ChannelDecision]:
    policy = policy_of(media_policy(session, media))
    facts = facts if facts is not None else load_facts(session, [media])
    today = today or utcnow().date()
    wanted = channels or [c.value for c in Channel]
    return {c: decide_channel(media, policy, facts, c, today, blurred=blurred) for c in wanted}


def blurred_in(publication: Publication) -> frozenset[uuid.UUID] | None:
    """The faces blurred in a published copy; None if it is not a redacted copy."""
    if publication.blurred_faces is None:
        return None
    return frozenset(uuid.UUID(f) for f in publication.blurred_faces)


def decide_publication(
    session: Session,
    media: Media,
    publication: Publication,
    *,
    facts: ConsentFacts | None = None,
    today: date | None = None,
) -> ChannelDecision:
    """May this live copy stay up? A redacted copy is judged on the faces left visible."""
    return decide_media(
        session, media, facts=facts, channels=[publication.channel], today=today,
        blurred=blurred_in(publication),
    )[publication.channel]


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
