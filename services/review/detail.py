"""What SLT see about a medium under review: every face with its status and the
matched pupil's consent per channel, the reasons it was flagged, and the decisions
made on it so far."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
    ConsentStatus,
    Device,
    Face,
    MatchStatus,
    Media,
    MediaKind,
    MediaStatus,
    Publication,
    Pupil,
    ReviewDecision,
    Role,
)
from models.repositories.media import PublicationRepository
from models.repositories.pupils import PupilRepository
from models.repositories.review import ReviewRepository
from services.core.auth import Principal
from services.core.policy import Policy, policy_of
from services.gate.decide import (
    ChannelDecision,
    ConsentFacts,
    decide_media,
    face_allowed,
    face_status,
    load_facts,
)
from services.gate.media import get_media
from services.gate.rules import consent_in_force
from services.review.service import review_queue


@dataclass(frozen=True)
class Flag:
    code: str
    text: str


@dataclass(frozen=True)
class ConsentView:
    channel: str
    allowed: bool
    # Plain words: "yes", "yes, until 2026-07-31", "withdrawn", "expired", "not recorded".
    text: str


@dataclass(frozen=True)
class FaceView:
    face: Face
    number: int
    status: str
    pupil: Pupil | None
    consents: list[ConsentView]
    cleared_for: list[str]
    # Channels on which this face may be shown unblurred today.
    shown_on: list[str]

    @property
    def can_be_cleared(self) -> bool:
        return self.face.match_status != MatchStatus.MATCHED


@dataclass(frozen=True)
class ReviewView:
    media: Media
    policy: Policy
    facts: ConsentFacts
    channels: list[str]
    decisions: dict[str, ChannelDecision]
    faces: list[FaceView]
    flags: list[Flag]
    history: list[ReviewDecision]
    awaiting: list[ReviewDecision]
    publications: list[Publication]
    pupils: dict[uuid.UUID, Pupil]
    # SLT have already decided something on it (it may still be blocked somewhere).
    decided: bool

    @property
    def blocked_channels(self) -> list[str]:
        return [c for c, d in self.decisions.items() if not d.allowed]


def consent_text(facts: ConsentFacts, pupil_id: uuid.UUID, channel: str, today: date) -> str:
    if not facts.biometric_current.get(pupil_id, False):
        return "face matching consent ended"
    record = facts.latest.get((pupil_id, channel))
    if record is None:
        return "not recorded"
    if record.status == ConsentStatus.WITHDRAWN:
        return f"withdrawn {record.recorded_at:%d %b %Y}"
    if not consent_in_force(record, today):
        return f"expired {record.expires_on:%d %b %Y}" if record.expires_on else "no"
    return f"yes, until {record.expires_on:%d %b %Y}" if record.expires_on else "yes"


def flags_for(media: Media, statuses: list[str], awaiting: list[ReviewDecision],
              pupils: dict[uuid.UUID, Pupil]) -> list[Flag]:
    """Why a person should look at this medium, in the words the guidance uses."""
    flags: list[Flag] = []
    if media.status == MediaStatus.FAILED:
        flags.append(Flag("screening_failed",
                          f"The face check failed ({media.error or 'no reason given'}), so "
                          "nobody knows who is in it. It stays blocked until you decide."))
    elif media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        flags.append(Flag("not_screened", "The faces are still being checked."))
    unknown = statuses.count("unknown")
    uncertain = statuses.count("uncertain")
    if unknown:
        flags.append(Flag("unknown_face",
                          f"{unknown} face(s) not recognised as any pupil on the register."))
    if uncertain:
        flags.append(Flag("uncertain_face",
                          f"{uncertain} face(s) could not be identified safely: too small, "
                          "blurred, turned away, or too like another pupil."))
    withdrawn = sorted({_name(pupils, f.pupil_id) for f, s in zip(media.faces, statuses,
                                                                   strict=True)
                        if s == "withdrawn" and f.pupil_id is not None})
    if withdrawn:
        flags.append(Flag("withdrawn_consent",
                          "Consent was withdrawn for: " + ", ".join(withdrawn) + "."))
    unconsented = sorted({_name(pupils, f.pupil_id) for f, s in zip(media.faces, statuses,
                                                                     strict=True)
                          if s == "unconsented" and f.pupil_id is not None})
    if unconsented:
        flags.append(Flag("no_consent",
                          "No consent to publish: " + ", ".join(unconsented) + "."))
    if media.device == Device.PERSONAL:
        flags.append(Flag("personal_device",
                          "Taken on a personal device. Check the uploader has deleted the "
                          "original from it."))
    if _single_pupil(media):
        flags.append(Flag("single_pupil",
                          "Only one pupil is in this picture. The guidance asks us to avoid "
                          "images of a single pupil; prefer group shots."))
    for decision in awaiting:
        n = len(decision.cleared_faces)
        flags.append(Flag("awaiting_second",
                          f"{decision.decider_name} cleared {n} face{'s' if n != 1 else ''} "
                          "nobody could identify; a second SLT member must confirm before "
                          "it counts."))
    return flags


def _single_pupil(media: Media) -> bool:
    if media.kind == MediaKind.IMAGE:
        return len(media.faces) == 1
    people = {f.pupil_id for f in media.faces}
    return len(media.faces) > 0 and len(people) == 1 and None not in people


def _name(pupils: dict[uuid.UUID, Pupil], pupil_id: uuid.UUID) -> str:
    pupil = pupils.get(pupil_id)
    return f"{pupil.given_name} {pupil.family_name}" if pupil else "a pupil"


def _view(session: Session, media: Media, policy: Policy, facts: ConsentFacts,
          decisions: dict[str, ChannelDecision], today: date, *,
          history: bool, decided: bool) -> ReviewView:
    channels = [c.value for c in policy.channels]
    pupils = PupilRepository(session).get_many(f.pupil_id for f in media.faces if f.pupil_id)
    repo = ReviewRepository(session)
    awaiting = repo.awaiting([media.id])
    faces = []
    for number, face in enumerate(media.faces, start=1):
        pupil = pupils.get(face.pupil_id) if face.pupil_id else None
        faces.append(FaceView(
            face=face,
            number=number,
            status=face_status(face, facts, policy, today),
            pupil=pupil,
            consents=[
                ConsentView(c, face_allowed(face, facts, c, today),
                            consent_text(facts, pupil.id, c, today))
                for c in channels
            ] if pupil else [],
            cleared_for=sorted(facts.cleared.get(face.id, set()) & set(channels)),
            shown_on=[c for c in channels if face_allowed(face, facts, c, today)],
        ))
    publications = PublicationRepository(session).active_for_media([media.id])
    return ReviewView(
        media=media,
        policy=policy,
        facts=facts,
        channels=channels,
        decisions=decisions,
        faces=faces,
        flags=flags_for(media, [f.status for f in faces], awaiting, pupils),
        history=repo.for_media(media.id) if history else [],
        awaiting=awaiting,
        publications=publications,
        pupils=pupils,
        # A decision waiting for a second SLT member still needs someone.
        decided=(decided or bool(publications) or media.id in facts.approved)
        and not awaiting,
    )


def review_view(session: Session, principal: Principal, media_id: uuid.UUID) -> ReviewView:
    principal.require(Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    policy = policy_of(principal.org.policy)
    facts = load_facts(session, [media])
    decisions = decide_media(session, media, facts=facts,
                             channels=[c.value for c in policy.channels])
    decided = bool(ReviewRepository(session).decided([media.id]))
    return _view(session, media, policy, facts, decisions, utcnow().date(), history=True,
                 decided=decided)


def queue_views(session: Session, principal: Principal) -> list[ReviewView]:
    """The review queue (every blocked medium, failures first) with each one's flags."""
    policy = policy_of(principal.org.policy)
    today = utcnow().date()
    entries = review_queue(session, principal)
    decided = ReviewRepository(session).decided([e.media.id for e in entries])
    return [
        _view(session, e.media, policy, e.facts, e.decisions, today, history=False,
              decided=e.media.id in decided)
        for e in entries
    ]
