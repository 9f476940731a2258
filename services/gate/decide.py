"""The decision: may this medium go to channel C now? Computed whenever it is asked for,
from one read of the facts (`load_facts`) and a pure function (`decide_channel`).

A medium may go to C only if screening finished without error against the register as
it is now (not stale), every face is matched to an active pupil whose biometric consent
is current and whose consent for C is granted and unexpired today (in the
organisation's time zone), and SLT approval is present where the policy requires it
(or the upload came from a personal device, or the video was truncated). Everything
else (unknown, uncertain, withdrawn, left, failed, queued, stale) blocks. A face that
SLT cleared counts only if nobody could identify it and no pupil is a candidate for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

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
from services.core.clock import local_today
from services.core.errors import NotFound
from services.core.policy import Policy, policy_of
from services.gate import reasons as rc
from services.gate.reasons import Reason
from services.gate.rules import biometric_is_current, consent_in_force


@dataclass(frozen=True, slots=True)
class ChannelDecision:
    allowed: bool
    reasons: list[Reason]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


@dataclass(frozen=True)
class ConsentFacts:
    """Everything a decision reads, read once for a batch of media."""

    latest: dict[tuple[uuid.UUID, str], PublicationConsent] = field(default_factory=dict)
    biometric_current: dict[uuid.UUID, bool] = field(default_factory=dict)
    active: dict[uuid.UUID, bool] = field(default_factory=dict)
    approved: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    # Unknown or uncertain faces SLT cleared (decision in force): face id -> channels.
    cleared: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    # Channels SLT approved for a blurred copy only, per medium.
    approved_redacted: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    # The organisation's match epoch: media screened at a lower one are stale.
    match_epoch: dict[uuid.UUID, int] = field(default_factory=dict)


def candidate_ids(face: Face) -> list[uuid.UUID]:
    return [uuid.UUID(str(c["pupil_id"])) for c in (face.candidates or [])]


def pupils_in(media: Sequence[Media]) -> set[uuid.UUID]:
    """Every pupil a face in these media is matched to or is a candidate for."""
    out: set[uuid.UUID] = set()
    for m in media:
        for f in m.faces:
            if f.pupil_id is not None:
                out.add(f.pupil_id)
            out.update(candidate_ids(f))
    return out


def load_facts(session: Session, media: Sequence[Media]) -> ConsentFacts:
    pupil_ids = pupils_in(media)
    repo = PupilRepository(session)
    cleared: dict[uuid.UUID, set[str]] = {}
    approved_redacted: dict[uuid.UUID, set[str]] = {}
    for decision in ReviewRepository(session).in_force([m.id for m in media]):
        for face_id in decision.cleared_faces:
            cleared.setdefault(uuid.UUID(face_id), set()).update(decision.channels)
        if decision.kind == DecisionKind.REDACT:
            approved_redacted.setdefault(decision.media_id, set()).update(decision.channels)
    orgs = OrganisationRepository(session)
    return ConsentFacts(
        latest=repo.latest_consents(pupil_ids),
        biometric_current={p: biometric_is_current(h)
                           for p, h in repo.biometric_histories(pupil_ids).items()},
        active=repo.active_flags(pupil_ids),
        approved=MediaRepository(session).approved_channels([m.id for m in media]),
        cleared=cleared,
        approved_redacted=approved_redacted,
        match_epoch={org: orgs.epochs(org)[1] for org in {m.org_id for m in media}},
    )


def is_stale(media: Media, facts: ConsentFacts) -> bool:
    """Screened against a gallery that has since gained templates (a face may now match
    someone else), or a pupil matched or a candidate in it was erased or left. A video
    screened before every frame was screened is stale too."""
    if media.kind == MediaKind.VIDEO and media.frames_screened is None:
        return True
    if not media.faces:
        return False
    if media.needs_rescreen:
        return True
    epoch = facts.match_epoch.get(media.org_id, 0)
    return media.screened_match_epoch is None or media.screened_match_epoch < epoch


def decide_channel(
    media: Media, policy: Policy, facts: ConsentFacts, channel: str, today: date,
    *, blurred: Collection[uuid.UUID] | None = None,
) -> ChannelDecision:
    """`blurred` decides a redacted copy: the faces in it are blurred and do not count,
    and SLT approval of a blurred copy counts as approval."""
    reasons: list[Reason] = []
    if channel not in {c.value for c in policy.channels}:
        reasons.append(Reason(rc.CHANNEL_DISABLED, {"channel": channel}))

    approved = channel in facts.approved.get(media.id, set()) or (
        blurred is not None and channel in facts.approved_redacted.get(media.id, set())
    )
    if media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        reasons.append(Reason(rc.SCREENING_PENDING))
    elif media.status == MediaStatus.FAILED:
        failure = ({"failure": media.failure_code, **(media.failure_data or {})}
                   if media.failure_code else {})
        reasons.append(Reason(rc.SCREENING_FAILED, {"error": media.error or "", **failure}))
    elif media.status == MediaStatus.PURGED:
        reasons.append(Reason(rc.PURGED))
    elif media.status == MediaStatus.REJECTED:
        reasons.append(Reason(rc.REJECTED))
    elif media.status not in (MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW):
        reasons.append(Reason(rc.UNEXPECTED_STATUS, {"status": media.status}))
    else:
        if is_stale(media, facts):
            reasons.append(Reason(rc.STALE))
        for flag in media.screen_flags or []:
            if flag.get("code") == rc.VIDEO_TRUNCATED and not approved:
                reasons.append(Reason(rc.VIDEO_TRUNCATED, {k: v for k, v in flag.items()
                                                          if k != "code"}))
        reasons.extend(_face_reasons(media, facts, channel, today, frozenset(blurred or ())))

    if media.device == Device.PERSONAL and not approved:
        if policy.personal_devices == "forbidden":
            reasons.append(Reason(rc.PERSONAL_DEVICE_FORBIDDEN))
        else:
            reasons.append(Reason(rc.PERSONAL_DEVICE_PERMISSION,
                                  {"permission_from": policy.personal_device_permission_from}))
    if policy.slt_approval_required and not approved:
        reasons.append(Reason(rc.SLT_APPROVAL_REQUIRED, {"channel": channel}))
    return ChannelDecision(allowed=not reasons, reasons=reasons)


def pupil_reason(pupil_id: uuid.UUID, facts: ConsentFacts, channel: str,
                 today: date) -> Reason | None:
    """Why this matched pupil may not be shown on the channel today; None if they may."""
    data: dict[str, Any] = {"pupil_id": str(pupil_id)}
    if not facts.active.get(pupil_id, False):
        return Reason(rc.PUPIL_LEFT, data)
    if not facts.biometric_current.get(pupil_id, False):
        return Reason(rc.BIOMETRIC_ENDED, data)
    record = facts.latest.get((pupil_id, channel))
    data["channel"] = channel
    if record is None:
        return Reason(rc.NO_CONSENT, data)
    if record.status == ConsentStatus.WITHDRAWN:
        return Reason(rc.CONSENT_WITHDRAWN, data)
    if not consent_in_force(record, today):
        return Reason(rc.CONSENT_EXPIRED, {**data, "expires_on": str(record.expires_on)})
    return None


def _face_reasons(media: Media, facts: ConsentFacts, channel: str, today: date,
                  blurred: frozenset[uuid.UUID]) -> list[Reason]:
    reasons: list[Reason] = []
    # Counted per person: a video's track is one person however many frames show it.
    unknown: set[object] = set()
    uncertain: set[object] = set()
    candidates: set[str] = set()
    seen_pupils: set[uuid.UUID] = set()
    for face in media.faces:
        if face.id in blurred or is_cleared(face, facts, channel):
            continue
        if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
            person = ("track", face.track) if face.track is not None else face.id
            if face.match_status == MatchStatus.UNKNOWN:
                unknown.add(person)
            else:
                uncertain.add(person)
                candidates.update(str(c) for c in candidate_ids(face))
            continue
        if face.pupil_id in seen_pupils:
            continue
        seen_pupils.add(face.pupil_id)
        reason = pupil_reason(face.pupil_id, facts, channel, today)
        if reason is not None:
            reasons.append(reason)
    video = media.kind == MediaKind.VIDEO
    if unknown:
        reasons.append(Reason(rc.FACES_UNKNOWN, {"count": len(unknown), "video": video}))
    if uncertain:
        reasons.append(Reason(rc.FACES_UNCERTAIN, {"count": len(uncertain), "video": video,
                                                  "candidates": sorted(candidates)}))
    return reasons


def is_cleared(face: Face, facts: ConsentFacts, channel: str) -> bool:
    """SLT cleared this face for the channel. Only a face nobody could identify, with no
    pupil as a candidate, can be cleared: a pupil's own consent always decides."""
    return (face.match_status != MatchStatus.MATCHED and not face.candidates
            and channel in facts.cleared.get(face.id, set()))


def face_allowed(face: Face, facts: ConsentFacts, channel: str, today: date) -> bool:
    """May this face be shown, unblurred, on the channel today? The per-face form of
    `_face_reasons`: everything it would object to is not allowed."""
    if is_cleared(face, facts, channel):
        return True
    if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
        return False
    return pupil_reason(face.pupil_id, facts, channel, today) is None


def organisation_policy(session: Session, org_id: uuid.UUID) -> Policy:
    org = OrganisationRepository(session).get(org_id)
    if org is None:
        raise NotFound("organisation of this medium no longer exists")
    return policy_of(org.policy)


def decide_media(
    session: Session,
    media: Media,
    *,
    facts: ConsentFacts | None = None,
    channels: Sequence[str] | None = None,
    today: date | None = None,
    blurred: Collection[uuid.UUID] | None = None,
) -> dict[str, ChannelDecision]:
    policy = organisation_policy(session, media.org_id)
    facts = facts if facts is not None else load_facts(session, [media])
    today = today or local_today(policy)
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


def face_status(face: Face, facts: ConsentFacts, policy: Policy, today: date) -> str:
    """One word per face for people: consented, unconsented, withdrawn, left, unknown,
    uncertain.

    consented   - matched, biometric consent current, consent in force for at
                  least one enabled channel and withdrawn for none
    withdrawn   - matched, but some consent (or biometric consent) was withdrawn
    left        - matched to a pupil who has left the school
    unconsented - matched, no consent in force for any enabled channel
    """
    if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
        return face.match_status if face.match_status != MatchStatus.MATCHED else "uncertain"
    if not facts.active.get(face.pupil_id, False):
        return "left"
    if not facts.biometric_current.get(face.pupil_id, False):
        return "withdrawn"
    records = [facts.latest.get((face.pupil_id, c.value)) for c in policy.channels]
    if any(r is not None and r.status == ConsentStatus.WITHDRAWN for r in records):
        return "withdrawn"
    if any(consent_in_force(r, today) for r in records):
        return "consented"
    return "unconsented"
