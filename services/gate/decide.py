"""The decision: may this medium go to channel C now? Computed whenever it is asked for,
from one read of the facts (`load_facts`) and a pure function (`decide_channel`).

A medium may go to C only if screening finished without error against the register as
it is now (not stale), every face is matched to an active pupil whose biometric consent
is current and whose consent for C is granted and unexpired today (in the
organisation's time zone), and SLT approval is present where the policy requires it
(or the upload came from a personal device, or the video was truncated). Everything
else (unknown, uncertain, withdrawn, refused, left, failed, queued, stale) blocks. A face
that SLT cleared counts only if nobody could identify it and no pupil is a candidate for
it. Consent is read per giver (rules.consent_state): from the policy's
pupil_consent_from_year both a guardian's and the pupil's own must be in force. Where the
policy requires capture consent, a recognised pupil without it blocks every channel, and
no approval, clearing or blurring lifts that. Flags the upload carries (its photography
session) and a channel its purpose is not for block until SLT approve.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from models.orm import (
    CAPTURE,
    Channel,
    DecisionKind,
    Device,
    Face,
    GivenBy,
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
from services.gate import rules
from services.gate.reasons import Reason
from services.gate.rules import biometric_is_current, consent_state


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
    # The newest record per (pupil, channel or CAPTURE, given_by): what decides consent.
    by_giver: dict[tuple[uuid.UUID, str, str], PublicationConsent] = field(
        default_factory=dict)
    # Pupils whose own consent is needed as well as a guardian's (their organisation's
    # pupil_consent_from_year and their year group).
    needs_pupil: dict[uuid.UUID, bool] = field(default_factory=dict)
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


def register_facts(session: Session, pupil_ids: Collection[uuid.UUID]) -> ConsentFacts:
    """The register's side of the facts (consent, biometrics, left) for these pupils."""
    repo = PupilRepository(session)
    orgs = OrganisationRepository(session)
    policies: dict[uuid.UUID, Policy] = {}
    needs_pupil: dict[uuid.UUID, bool] = {}
    for pupil in repo.get_many(pupil_ids).values():
        if pupil.org_id not in policies:
            org = orgs.get(pupil.org_id)
            policies[pupil.org_id] = policy_of(org.policy if org is not None else {})
        needs_pupil[pupil.id] = policies[pupil.org_id].pupil_consent_needed(pupil.year_group)
    return ConsentFacts(
        latest=repo.latest_consents(pupil_ids),
        by_giver=repo.latest_consents_by_giver(pupil_ids),
        needs_pupil=needs_pupil,
        biometric_current={p: biometric_is_current(h)
                           for p, h in repo.biometric_histories(pupil_ids).items()},
        active=repo.active_flags(pupil_ids),
    )


def load_facts(session: Session, media: Sequence[Media]) -> ConsentFacts:
    pupil_ids = pupils_in(media)
    cleared: dict[uuid.UUID, set[str]] = {}
    approved_redacted: dict[uuid.UUID, set[str]] = {}
    for decision in ReviewRepository(session).in_force([m.id for m in media]):
        for face_id in decision.cleared_faces:
            cleared.setdefault(uuid.UUID(face_id), set()).update(decision.channels)
        if decision.kind == DecisionKind.REDACT:
            approved_redacted.setdefault(decision.media_id, set()).update(decision.channels)
    orgs = OrganisationRepository(session)
    return replace(
        register_facts(session, pupil_ids),
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
            # Not lifted by an approval (it may predate the loss): SLT name the face again.
            if flag.get("code") == rc.NAMED_FACE_LOST:
                reasons.append(Reason(rc.NAMED_FACE_LOST, {k: v for k, v in flag.items()
                                                          if k != "code"}))
        reasons.extend(_face_reasons(media, facts, channel, today, frozenset(blurred or ())))
        # Blurring does not help here: the image itself was made without consent.
        reasons.extend(capture_reasons(media, policy, facts, today))
    reasons.extend(upload_reasons(media, policy, channel, approved=approved))

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
    data["channel"] = channel
    state, record = consent_of(facts, pupil_id, channel, today)
    if state == rules.IN_FORCE:
        return None
    if state == rules.REFUSED and record is not None:
        return Reason(rc.CONSENT_REFUSED, {**data, "given_by": record.given_by})
    if state == rules.WITHDRAWN and record is not None:
        return Reason(rc.CONSENT_WITHDRAWN, {**data, "given_by": record.given_by})
    if state == rules.EXPIRED and record is not None:
        return Reason(rc.CONSENT_EXPIRED, {**data, "expires_on": str(record.expires_on)})
    if state == rules.AWAITING_PUPIL:
        return Reason(rc.PUPIL_CONSENT_MISSING, data)
    if state == rules.AWAITING_GUARDIAN:
        return Reason(rc.NO_CONSENT, {**data, "missing": GivenBy.GUARDIAN.value})
    return Reason(rc.NO_CONSENT, data)


def consent_of(facts: ConsentFacts, pupil_id: uuid.UUID, channel: str,
               today: date) -> tuple[str, PublicationConsent | None]:
    """The state of the pupil's consent for a channel (or CAPTURE) today; see
    rules.consent_state."""
    by_giver = {g.value: r for g in GivenBy
                if (r := facts.by_giver.get((pupil_id, channel, g.value))) is not None}
    return consent_state(by_giver, facts.needs_pupil.get(pupil_id, False), today)


def capture_reasons(media: Media, policy: Policy, facts: ConsentFacts,
                    today: date) -> list[Reason]:
    """Pupils recognised in a medium who had no consent in force to being photographed.
    Every matched face counts, blurred, cleared or not, and no approval lifts it: only
    deleting the medium (SLT reject) ends it, or the consent being recorded."""
    if not policy.capture_consent_required:
        return []
    reasons = []
    seen: set[uuid.UUID] = set()
    for face in media.faces:
        if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
            continue
        if face.pupil_id in seen:
            continue
        seen.add(face.pupil_id)
        state, _ = consent_of(facts, face.pupil_id, CAPTURE, today)
        if state != rules.IN_FORCE:
            reasons.append(Reason(rc.NO_CAPTURE_CONSENT,
                                  {"pupil_id": str(face.pupil_id), "state": state}))
    return reasons


def upload_reasons(media: Media, policy: Policy, channel: str, *,
                   approved: bool) -> list[Reason]:
    """What the upload itself carries: flags from its photography session (SLT approval
    lifts them), and a channel its purpose is not for (SLT approval lifts it)."""
    if approved:
        return []
    reasons = [Reason(str(flag["code"]), {k: v for k, v in flag.items() if k != "code"})
               for flag in media.upload_flags or [] if flag.get("code")]
    purpose = policy.purpose(media.purpose or "")
    if purpose is not None and channel not in {c.value for c in purpose.channels}:
        reasons.append(Reason(rc.NOT_FOR_PURPOSE,
                              {"purpose": purpose.name, "channel": channel}))
    return reasons


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
    unconsented - matched, no consent in force for any enabled channel, or no capture
                  consent where the policy requires it
    """
    if face.match_status != MatchStatus.MATCHED or face.pupil_id is None:
        return face.match_status if face.match_status != MatchStatus.MATCHED else "uncertain"
    if not facts.active.get(face.pupil_id, False):
        return "left"
    if not facts.biometric_current.get(face.pupil_id, False):
        return "withdrawn"
    states = [consent_of(facts, face.pupil_id, c.value, today)[0] for c in policy.channels]
    if rules.WITHDRAWN in states:
        return "withdrawn"
    if policy.capture_consent_required and consent_of(
            facts, face.pupil_id, CAPTURE, today)[0] != rules.IN_FORCE:
        # Recognised without consent to being photographed: nothing may show them.
        return "unconsented"
    if rules.IN_FORCE in states:
        return "consented"
    return "unconsented"
