"""What SLT see about a medium under review: every face with its status and the
matched pupil's consent per channel, the reasons it was flagged, and the decisions
made on it so far.

A video has a face row for every frame a face is in; faces of one person across
frames share a track. For videos the view also groups the faces into tracks (one
per person), which is what SLT look at and decide on."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
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
from services.gate import reasons as rc
from services.gate import rules
from services.gate.decide import (
    ChannelDecision,
    ConsentFacts,
    consent_of,
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
    # Plain words: "yes", "yes, until 2026-07-31", "withdrawn", "refused", "not returned".
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


# Most restrictive first: a track whose faces disagree (they should not) is shown as the
# worst of them, never the best.
_STATUS_ORDER = ("left", "withdrawn", "unconsented", "uncertain", "unknown", "consented")


@dataclass(frozen=True)
class TrackView:
    """One person in a video: every face of one track, in frame order. Every face of a
    track carries the track's match decision; what the track may do is what all of its
    faces may do (cleared or shown only where every face is)."""

    # 1, 2, ... in order of first appearance: "Person 3" on the page.
    number: int
    # The engine's track number; None for a face with no track (each is its own).
    track: int | None
    faces: list[FaceView]
    # The largest face: its id stands for the track when SLT clear it.
    representative: FaceView
    # First, largest, last (distinct faces, in frame order).
    thumbnails: list[FaceView]
    status: str
    cleared_for: list[str]
    shown_on: list[str]

    @property
    def pupil(self) -> Pupil | None:
        return self.representative.pupil

    @property
    def consents(self) -> list[ConsentView]:
        return self.representative.consents

    @property
    def first_frame(self) -> int:
        return self.faces[0].face.frame

    @property
    def last_frame(self) -> int:
        return self.faces[-1].face.frame

    @property
    def face_ids(self) -> list[uuid.UUID]:
        return [f.face.id for f in self.faces]

    @property
    def can_be_cleared(self) -> bool:
        return all(f.can_be_cleared for f in self.faces)


def _area(face: Face) -> int:
    return max(0, face.right - face.left) * max(0, face.bottom - face.top)


def group_tracks(faces: Iterable[Face]) -> list[list[Face]]:
    """The faces of a video by track, each in frame order, tracks in order of first
    appearance. A face with no track number is a track of its own."""
    groups: dict[object, list[Face]] = {}
    for face in faces:
        key: object = face.track if face.track is not None else face.id
        groups.setdefault(key, []).append(face)
    tracks = [sorted(g, key=lambda f: (f.frame, f.left)) for g in groups.values()]
    return sorted(tracks, key=lambda g: (g[0].frame, g[0].track if g[0].track is not None
                                         else -1, g[0].left))


def representative(track: Sequence[Face]) -> Face:
    """The largest face of a track (the earliest of equals)."""
    return max(track, key=lambda f: (_area(f), -f.frame))


def thumbnails(track: Sequence[Face]) -> list[Face]:
    """First, largest and last face of a track: distinct, in frame order."""
    chosen = {f.id: f for f in (track[0], representative(track), track[-1])}
    return sorted(chosen.values(), key=lambda f: (f.frame, f.left))


def thumbnail_faces(media: Media) -> set[uuid.UUID]:
    """Ids of the faces a video's review page shows (thumbnails of every track)."""
    return {f.id for track in group_tracks(media.faces) for f in thumbnails(track)}


def _worst(statuses: Iterable[str]) -> str:
    found = set(statuses)
    for status in _STATUS_ORDER:
        if status in found:
            return status
    return sorted(found)[0] if found else "unknown"


def _tracks(faces: list[FaceView], channels: list[str]) -> list[TrackView]:
    by_id = {f.face.id: f for f in faces}
    views: list[TrackView] = []
    for number, track in enumerate(group_tracks(f.face for f in faces), start=1):
        members = [by_id[f.id] for f in track]
        views.append(TrackView(
            number=number,
            track=track[0].track,
            faces=members,
            representative=by_id[representative(track).id],
            thumbnails=[by_id[f.id] for f in thumbnails(track)],
            status=_worst(f.status for f in members),
            cleared_for=[c for c in channels if all(c in f.cleared_for for f in members)],
            shown_on=[c for c in channels if all(c in f.shown_on for f in members)],
        ))
    return views


@dataclass(frozen=True)
class ReviewView:
    media: Media
    policy: Policy
    facts: ConsentFacts
    channels: list[str]
    decisions: dict[str, ChannelDecision]
    faces: list[FaceView]
    # Videos: the faces by person (track); empty for a photo.
    tracks: list[TrackView]
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

    @property
    def person_of_face(self) -> dict[str, int]:
        """For a video, the person number of every face (by face id as text); for a
        photo, the face number."""
        if self.media.kind == MediaKind.IMAGE:
            return {str(f.face.id): f.number for f in self.faces}
        return {str(f.face.id): t.number for t in self.tracks for f in t.faces}


def consent_text(facts: ConsentFacts, pupil_id: uuid.UUID, channel: str, today: date) -> str:
    if not facts.biometric_current.get(pupil_id, False):
        return "face matching consent ended"
    state, record = consent_of(facts, pupil_id, channel, today)
    if state == rules.NOT_RETURNED or record is None:
        return "not returned"
    if state == rules.WITHDRAWN:
        return f"withdrawn {record.recorded_at:%d %b %Y}"
    if state == rules.REFUSED:
        return f"refused {record.recorded_at:%d %b %Y}"
    if state == rules.AWAITING_PUPIL:
        return "no: the pupil's own consent is needed"
    if state == rules.AWAITING_GUARDIAN:
        return "no: a parent's or guardian's consent is needed"
    if not consent_in_force(record, today):
        return f"expired {record.expires_on:%d %b %Y}" if record.expires_on else "no"
    return f"yes, until {record.expires_on:%d %b %Y}" if record.expires_on else "yes"


SESSION_CODES = (rc.OUTSIDE_SESSION, rc.NOT_ON_SESSION, rc.SESSION_DEVICE)


def consent_flags(media: Media, decisions: dict[str, ChannelDecision],
                  pupils: dict[uuid.UUID, Pupil]) -> list[Flag]:
    """Flags from the gate's reasons about capture consent and photography sessions."""
    reasons = [r for d in decisions.values() for r in d.reasons]
    flags: list[Flag] = []
    no_capture = sorted({_name(pupils, uuid.UUID(str(r.pupil_id))) for r in reasons
                         if r.code == rc.NO_CAPTURE_CONSENT and r.pupil_id})
    if no_capture:
        flags.append(Flag(
            "no_capture_consent",
            "No consent to being photographed: " + ", ".join(no_capture) + ". The image "
            "should not have been taken and cannot be published anywhere. Suggested "
            "decision: delete it (reject)."))
    session_codes = {r.code for r in reasons if r.code in SESSION_CODES}
    if session_codes:
        what = {rc.OUTSIDE_SESSION: "outside any approved photography session",
                rc.NOT_ON_SESSION: "by staff not approved for the session",
                rc.SESSION_DEVICE: "on a device the session does not allow"}
        flags.append(Flag("photography_session",
                          "Taken " + " and ".join(what[c] for c in SESSION_CODES
                                                  if c in session_codes)
                          + ". Check senior leaders knew about it before approving."))
    return flags


def flags_for(media: Media, statuses: list[str], awaiting: list[ReviewDecision],
              pupils: dict[uuid.UUID, Pupil],
              track_statuses: list[str] | None = None) -> list[Flag]:
    """Why a person should look at this medium, in the words the guidance uses. For a
    video, `track_statuses` (one per person) is what unknown and uncertain faces are
    counted by: a person seen in 200 frames is one person."""
    flags: list[Flag] = []
    if media.status == MediaStatus.FAILED:
        flags.append(Flag("screening_failed",
                          f"The face check failed ({media.error or 'no reason given'}), so "
                          "nobody knows who is in it. It stays blocked until you decide."))
    elif media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        flags.append(Flag("not_screened", "The faces are still being checked."))
    counted = statuses if track_statuses is None else track_statuses

    def how_many(n: int) -> str:
        if track_statuses is None:
            return "1 face" if n == 1 else f"{n} faces"
        return f"{n} {'person' if n == 1 else 'people'} in the video"

    unknown = counted.count("unknown")
    uncertain = counted.count("uncertain")
    if unknown:
        flags.append(Flag("unknown_face", f"{how_many(unknown)} not recognised as any "
                          "pupil on the register."))
    if uncertain:
        flags.append(Flag("uncertain_face",
                          f"{how_many(uncertain)} could not be identified safely: too "
                          "small, blurred, turned away, or too like another pupil."))
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
    track_of = {str(f.id): f.track if f.track is not None else f.id for f in media.faces}
    for decision in awaiting:
        if media.kind == MediaKind.IMAGE:
            n, noun = len(decision.cleared_faces), "face"
        else:
            n = len({track_of.get(fid, fid) for fid in decision.cleared_faces})
            noun = "person" if n == 1 else "people"
        plural = "s" if n != 1 and noun == "face" else ""
        flags.append(Flag("awaiting_second",
                          f"{decision.decider_name} cleared {n} {noun}{plural} "
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
    tracks = _tracks(faces, channels) if media.kind != MediaKind.IMAGE else []
    publications = PublicationRepository(session).active_for_media([media.id])
    return ReviewView(
        media=media,
        policy=policy,
        facts=facts,
        channels=channels,
        decisions=decisions,
        faces=faces,
        tracks=tracks,
        flags=flags_for(media, [f.status for f in faces], awaiting, pupils,
                        [t.status for t in tracks] if media.kind != MediaKind.IMAGE
                        else None) + consent_flags(media, decisions, pupils),
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


# The view of one medium from facts already read (the work queue builds its page with it).
view_of = _view
