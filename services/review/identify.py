"""SLT name a face: "this is <pupil>". The face (in a video, every face of its track) is
then matched to that pupil exactly as if the engine had recognised them, so the gate
(services.gate.decide) lets the pupil's own consent decide, and a later withdrawal finds
the photo (`MediaRepository.media_matching_pupil` reads face -> pupil).

Naming an unknown or uncertain face makes the gate judge a person it could not judge
before. Changing a recognised pupil to another one is a correction; where the policy
sets `second_slt_for_overrides`, a correction takes effect only once a second, different
SLT member confirms it. Both are refused while screening is unfinished or stale (the
face rows may be replaced by the re-screen), and for a pupil of another organisation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import (
    DecisionState,
    Face,
    FaceIdentification,
    MatchStatus,
    Media,
    MediaKind,
    MediaStatus,
    Pupil,
    Role,
)
from models.repositories.identifications import IdentificationRepository
from models.repositories.pupils import PupilRepository
from models.repositories.review import ReviewRepository
from services.biometrics.enrol import add_face_as_template
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import Conflict, ConsentGateError, Forbidden, InvalidInput, NotFound
from services.core.policy import policy_of
from services.core.uow import lock_for_change
from services.gate.rules import biometric_is_current
from services.review import decisions
from services.screen import names
from services.takedown import service as takedown
from storage.base import ObjectStore

TRIGGER = "face named by SLT"


@dataclass(frozen=True)
class Identified:
    record: FaceIdentification
    # Live copies taken down because the named pupil may not be shown there.
    taken_down: int


def _faces_of(session: Session, media: Media, face_id: uuid.UUID) -> list[Face]:
    """The face and, in a video, every face of its track (one person)."""
    repo = ReviewRepository(session)
    found = repo.faces(media.id, [face_id])
    if not found:
        raise NotFound("no such face in this image", face_id=str(face_id))
    face = found[0]
    if face.track is None:
        return [face]
    return list({f.id: f for f in [face, *repo.faces_in_tracks(media.id, [face.track])]}
                .values())


def _pupil(session: Session, principal: Principal, pupil_id: uuid.UUID) -> Pupil:
    pupil = PupilRepository(session).get(principal.org_id, pupil_id)
    if pupil is None:
        # Another organisation's pupil is "not found": never confirm it exists.
        raise NotFound("no such pupil in your organisation", pupil_id=str(pupil_id))
    return pupil


def identify(session: Session, settings: Settings, principal: Principal,
             media_id: uuid.UUID, face_id: uuid.UUID, pupil_id: uuid.UUID,
             justification: str) -> Identified:
    principal.require(Role.SLT, Role.ADMIN)
    text = decisions.justification_text(justification)
    media = decisions.locked_media(session, principal, media_id)
    if media.status in (MediaStatus.REJECTED, MediaStatus.PURGED):
        raise Conflict("this image has already been deleted")
    decisions.refuse_unfinished(session, media)
    pupil = _pupil(session, principal, pupil_id)
    faces = _faces_of(session, media, face_id)
    face = next(f for f in faces if f.id == face_id)
    matched = face.match_status == MatchStatus.MATCHED and face.pupil_id is not None
    lost = IdentificationRepository(session).lost(media.id)
    # Where a re-screen lost a name, SLT may agree with the engine's match: that too
    # answers the NAMED_FACE_LOST question.
    if matched and face.pupil_id == pupil.id and not lost:
        raise InvalidInput("this face is already matched to that pupil")
    second = matched and policy_of(principal.org.policy).second_slt_for_overrides
    record = IdentificationRepository(session).add(FaceIdentification(
        media_id=media.id, face_id=face.id, pupil_id=pupil.id,
        previous_pupil_id=face.pupil_id if matched else None,
        previous_status=face.match_status, justification=text,
        state=(DecisionState.AWAITING_SECOND if second else DecisionState.IN_FORCE).value,
        decided_by=principal.token_id, decider_name=principal.name, created_at=utcnow(),
        # What finds this face again when a re-screen replaces the face rows.
        media_sha256=media.sha256, boxes=names.boxes_of(face, faces),
    ))
    if second:
        audit(session, principal, "review.identify_awaiting_second", f"media:{media.id}",
              _details(record, faces))
        return Identified(record, 0)
    return Identified(record, _apply(session, settings, principal, media, record, faces))


def _details(record: FaceIdentification, faces: list[Face]) -> dict[str, object]:
    return {
        "identification": str(record.id),
        "face": str(record.face_id),
        "faces": len(faces),
        "pupil": str(record.pupil_id),
        "previous_pupil": str(record.previous_pupil_id) if record.previous_pupil_id else None,
        "previous_status": record.previous_status,
        "justification": record.justification,
    }


def _apply(session: Session, settings: Settings, principal: Principal, media: Media,
           record: FaceIdentification, faces: list[Face]) -> int:
    """Match the faces to the pupil, then decide every live copy again: the same gate,
    the same takedown loop as a consent change."""
    names.name_faces(faces, record.pupil_id)
    record.state = DecisionState.IN_FORCE.value
    # SLT named a face of this medium again: names a re-screen lost stop asking for them.
    for old in IdentificationRepository(session).lost(media.id):
        old.superseded_by = record.id
    session.flush()
    names.refresh_lost_flags(session, media)
    audit(session, principal, "review.face_identified", f"media:{media.id}",
          _details(record, faces))
    return takedown.redecide(session, settings, principal, media.org_id, [media],
                             trigger=TRIGGER)


def confirm(session: Session, settings: Settings, principal: Principal,
            record_id: uuid.UUID) -> Identified:
    """A second, different SLT member agrees with a correction."""
    principal.require(Role.SLT, Role.ADMIN)
    lock_for_change(session, principal.org_id)
    record = IdentificationRepository(session).get(principal.org_id, record_id)
    if record is None:
        raise NotFound("no such identification in your organisation")
    if record.state != DecisionState.AWAITING_SECOND:
        raise Conflict("this identification is not waiting for a second SLT member")
    if (record.decided_by == principal.token_id
            or record.decider_name.strip().casefold() == principal.name.strip().casefold()):
        raise Forbidden("a second, different SLT member must confirm this")
    media = decisions.locked_media(session, principal, record.media_id)
    decisions.refuse_unfinished(session, media)
    faces = _faces_of(session, media, record.face_id)
    face = next(f for f in faces if f.id == record.face_id)
    if face.pupil_id != record.previous_pupil_id:
        raise Conflict("the face has changed since this was asked; ask again")
    record.second_by = principal.token_id
    record.second_name = principal.name
    record.second_at = utcnow()
    return Identified(record, _apply(session, settings, principal, media, record, faces))


def awaiting(session: Session, media_id: uuid.UUID) -> list[FaceIdentification]:
    return IdentificationRepository(session).awaiting([media_id])


def search(session: Session, principal: Principal, text: str,
           candidates: list[uuid.UUID] | None = None) -> list[Pupil]:
    """Pupils to pick from: the engine's candidates first (in its order), then names
    that contain the text."""
    principal.require(Role.SLT, Role.ADMIN)
    first = [p for p in PupilRepository(session).get_many(candidates or []).values()
             if p.org_id == principal.org_id]
    order = {pid: i for i, pid in enumerate(candidates or [])}
    first.sort(key=lambda p: order.get(p.id, 0))
    rest = [p for p in IdentificationRepository(session).search_pupils(principal.org_id, text)
            if p.id not in order]
    return [*first, *rest]


# --- "also use this face to recognise <pupil> in future" (issue 11) ------------------

# The identification did not take effect yet (a correction waiting for a second SLT
# member): the face is still someone else's, so nothing is learnt from it.
NOT_IN_FORCE = "identification_awaiting_second"
NOT_A_PHOTO = "template_not_from_photo"


@dataclass(frozen=True)
class TemplateOutcome:
    """What became of the request to learn from a named face. ``code`` says why not
    (the error_code of services.biometrics.enrol's refusals, or NOT_IN_FORCE); ``details``
    are the refusal's data (distances, the gate's measurements)."""

    added: bool
    code: str | None = None
    reason: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    templates: int | None = None
    reference_photo_id: uuid.UUID | None = None


def learn_from_naming(sessions: sessionmaker[Session], settings: Settings,
                      principal: Principal, found: Identified, *,
                      store: ObjectStore | None = None) -> TemplateOutcome:
    """Add the named face as an extra template of the pupil, in a transaction of its own.

    Call it only once the identification is committed: the naming is what SLT decided
    and stands whatever happens here. The template is computed with no gate lock held
    (add_face_as_template takes the lock only to re-check consent and write), so a slow
    enrolment never holds up other decisions, and a refusal rolls back only the template
    (nothing of it is written: no row, no object). A refusal is audited, with its code,
    in one more small transaction, so the audit trail shows SLT asked and why it was
    not done."""
    record = found.record
    if record.state != DecisionState.IN_FORCE:
        return _refused(sessions, principal, record, NOT_IN_FORCE,
                        "the naming waits for a second SLT member, so the face is not yet "
                        "theirs to learn from", {})
    try:
        with transaction(sessions) as session:
            added = add_face_as_template(session, settings, principal, record.media_id,
                                         record.face_id, record.pupil_id, store=store)
    except ConsentGateError as exc:
        details = {k: v for k, v in exc.details.items() if k != "error_code"}
        code = str(exc.details.get("error_code") or exc.code)
        return _refused(sessions, principal, record, code, exc.message, details)
    return TemplateOutcome(True, templates=added.templates,
                           reference_photo_id=added.reference_photo_id,
                           details={"distance": round(added.distance, 4)})


def _refused(sessions: sessionmaker[Session], principal: Principal,
             record: FaceIdentification, code: str, reason: str,
             details: dict[str, object]) -> TemplateOutcome:
    with transaction(sessions) as session:
        audit(session, principal, "review.template_refused", f"pupil:{record.pupil_id}",
              {"identification": str(record.id), "media": str(record.media_id),
               "face": str(record.face_id), "code": code})
    return TemplateOutcome(False, code=code, reason=reason, details=details)


def template_offer(session: Session, media: Media,
                   pupils: list[Pupil]) -> dict[uuid.UUID, str | None]:
    """For the name-a-face page: per pupil, None where the tick box "also use this face
    to recognise them" may be offered, else the code of why not (the same checks
    add_face_as_template makes first; it checks again, under the lock, when asked)."""
    repo = PupilRepository(session)
    counts = repo.template_counts(p.id for p in pupils)
    why: dict[uuid.UUID, str | None] = {}
    for p in pupils:
        if media.kind != MediaKind.IMAGE:
            why[p.id] = NOT_A_PHOTO
        elif not p.active:
            why[p.id] = "pupil_left"
        elif not biometric_is_current(repo.biometric_history(p.id)):
            why[p.id] = "biometric_consent_not_current"
        elif counts.get(p.id, 0) == 0:
            why[p.id] = "no_reference_template"
        else:
            why[p.id] = None
    return why
