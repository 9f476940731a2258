"""SLT decisions on a medium: approve it for channels, approve only a blurred copy, or
reject it. Every decision carries a written justification, and the audit trail
records it with the decision.

Clearing a face. An approval may name faces ConsentGate could not identify
(unknown or uncertain) that the SLT member has looked at and judges fine to show
on those channels, for example a visiting adult who agreed to be photographed.
A recognised pupil without consent can never be cleared: their guardian's
decision stands, so they are blurred or the image is rejected. Where the
organisation's policy sets `second_slt_for_overrides`, a decision that clears a
face takes effect only when a second, different SLT member confirms it; until
then it grants nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import (
    Approval,
    Channel,
    DecisionKind,
    DecisionState,
    MatchStatus,
    Media,
    MediaStatus,
    ReviewDecision,
    Role,
)
from models.repositories.lifecycle import RetentionRepository
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from models.repositories.review import ReviewRepository
from services.core import outbox, validate
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.core.policy import policy_of
from services.core.uow import lock_for_change
from services.gate import reasons as rc
from services.gate.decide import ConsentFacts, is_stale
from services.gate.media import get_media
from services.takedown import service as takedown

MIN_JUSTIFICATION = 10
_DONE = (MediaStatus.REJECTED, MediaStatus.PURGED)


@dataclass(frozen=True)
class DecisionRequest:
    kind: DecisionKind
    justification: str
    channels: tuple[Channel, ...] = ()
    cleared_faces: tuple[uuid.UUID, ...] = ()


def _justification(text: str) -> str:
    # The same checks on every way in (API, pages): no NUL or broken text, bounded.
    text = validate.text(text, field="justification", max_length=5000).strip()
    if len(text) < MIN_JUSTIFICATION:
        raise InvalidInput(
            f"write why, in at least {MIN_JUSTIFICATION} characters: the reason is kept in "
            "the audit trail with the decision"
        )
    return text


def _locked_media(session: Session, principal: Principal, media_id: uuid.UUID) -> Media:
    """The medium, read again under the gate lock (every decision is a change)."""
    media = get_media(session, principal, media_id)
    lock_for_change(session, media.org_id)
    locked = MediaRepository(session).lock(media.org_id, media.id)
    if locked is None:
        raise NotFound("no such media in your organisation", media_id=str(media_id))
    return locked


def _refuse_unfinished(session: Session, media: Media) -> None:
    """The one approval path refuses while screening is queued, running or stale: SLT
    would be approving faces nobody has checked against the register as it is now."""
    if media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
        raise Conflict("the faces in this image are still being checked; decide once "
                       "the check has finished")
    epoch = OrganisationRepository(session).epochs(media.org_id)[1]
    if is_stale(media, ConsentFacts(match_epoch={media.org_id: epoch})):
        raise Conflict("the consent register changed since this image was checked, and it "
                       "is being checked again; decide once that has finished",
                       error_code=rc.STALE)


def record_decision(
    session: Session,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    request: DecisionRequest,
) -> ReviewDecision:
    principal.require(Role.SLT, Role.ADMIN)
    justification = _justification(request.justification)
    media = _locked_media(session, principal, media_id)
    if media.status in _DONE:
        raise Conflict("this image has already been deleted")
    if request.kind == DecisionKind.REJECT:
        return _reject(session, settings, principal, media, justification)

    policy = policy_of(principal.org.policy)
    channels = list(dict.fromkeys(c.value for c in request.channels))
    if not channels:
        raise InvalidInput("choose at least one place to publish")
    enabled = {c.value for c in policy.channels}
    off = [c for c in channels if c not in enabled]
    if off:
        raise InvalidInput(f"not enabled in your organisation's policy: {', '.join(off)}")
    _refuse_unfinished(session, media)
    cleared = _clearable(session, media, request.cleared_faces)

    second = bool(cleared) and policy.second_slt_for_overrides
    decision = ReviewRepository(session).add(ReviewDecision(
        media_id=media.id,
        kind=request.kind.value,
        channels=channels,
        cleared_faces=[str(f) for f in cleared],
        justification=justification,
        state=(DecisionState.AWAITING_SECOND if second else DecisionState.IN_FORCE).value,
        decided_by=principal.token_id,
        decider_name=principal.name,
        created_at=utcnow(),
    ))
    if second:
        audit(session, principal, "review.awaiting_second_slt", f"media:{media.id}",
              _details(decision))
    else:
        _put_in_force(session, decision)
        audit(session, principal, _ACTIONS[request.kind], f"media:{media.id}",
              _details(decision))
    return decision


_ACTIONS = {
    DecisionKind.APPROVE: "review.approved",
    DecisionKind.REDACT: "review.approved_blurred",
}


def _details(decision: ReviewDecision) -> dict[str, object]:
    return {
        "decision": str(decision.id),
        "kind": decision.kind,
        "channels": decision.channels,
        "justification": decision.justification,
        "faces_cleared": decision.cleared_faces,
    }


def _clearable(session: Session, media: Media, face_ids: tuple[uuid.UUID, ...]) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(face_ids))
    repo = ReviewRepository(session)
    faces = repo.faces(media.id, wanted)
    if len(faces) != len(wanted):
        raise InvalidInput("some of the faces chosen are not in this image")
    # In a video a decision acts on a person, not a frame: clearing one face of a track
    # clears the whole track, and every face of it must be clearable.
    tracks = {f.track for f in faces if f.track is not None}
    if tracks:
        faces = list({f.id: f for f in [*faces, *repo.faces_in_tracks(media.id, tracks)]}
                     .values())
        wanted = list(dict.fromkeys([*wanted, *(f.id for f in faces)]))
    if any(f.match_status == MatchStatus.MATCHED for f in faces):
        raise InvalidInput(
            "a recognised pupil cannot be cleared: their consent record decides. Blur them "
            "(approve a blurred copy) or reject the image"
        )
    if any(f.candidates for f in faces):
        raise InvalidInput(
            "this face looks like a pupil on the register, so it cannot be cleared as "
            "nobody we know: blur it (approve a blurred copy), reject the image, or name "
            "the pupil"
        )
    return wanted


def _put_in_force(session: Session, decision: ReviewDecision) -> None:
    """An approval grants its channels; a blurred-copy approval is read from the decision
    itself (`services.gate.load_facts`)."""
    decision.state = DecisionState.IN_FORCE.value
    if decision.kind == DecisionKind.APPROVE:
        repo = MediaRepository(session)
        for channel in decision.channels:
            repo.add_approval(Approval(
                media_id=decision.media_id,
                channel=channel,
                approved_by=decision.decided_by,
                approver_name=decision.decider_name,
                justification=decision.justification,
                created_at=utcnow(),
            ))
    session.flush()


def _reject(session: Session, settings: Settings, principal: Principal, media: Media,
            justification: str) -> ReviewDecision:
    """Take down its live publications and delete the medium's files (every version,
    through the outbox: after commit, retried until done); keep the row and the trail."""
    if RetentionRepository(session).active_hold(media.id) is not None:
        raise Conflict("this image is under a legal hold and cannot be deleted until the "
                       "hold is released")
    now = utcnow()
    taken = takedown.take_down_all(session, settings, principal, media,
                                   f"rejected by SLT ({principal.name}): {justification}")
    outbox.delete_object(session, media.original_key, org_id=media.org_id)
    # Previews, crops and blurred copies kept for review go with it.
    for folder in ("derivatives", "crops", "thumbnails"):
        outbox.delete_prefix(session, f"{folder}/{media.org_id}/{media.id}", org_id=media.org_id)
    repo = ReviewRepository(session)
    repo.decline_awaiting(media.id, "the image was rejected", now)
    MediaRepository(session).replace_faces(media, [])
    media.status = MediaStatus.REJECTED.value
    media.status_changed_at = now
    media.error = None
    decision = repo.add(ReviewDecision(
        media_id=media.id,
        kind=DecisionKind.REJECT.value,
        channels=[],
        cleared_faces=[],
        justification=justification,
        state=DecisionState.IN_FORCE.value,
        decided_by=principal.token_id,
        decider_name=principal.name,
        created_at=now,
    ))
    audit(session, principal, "review.rejected", f"media:{media.id}",
          {"decision": str(decision.id), "justification": justification,
           "publications_taken_down": taken})
    return decision


def _awaiting(session: Session, principal: Principal, decision_id: uuid.UUID) -> ReviewDecision:
    principal.require(Role.SLT, Role.ADMIN)
    decision = ReviewRepository(session).get(principal.org_id, decision_id)
    if decision is None:
        raise NotFound("no such decision in your organisation", decision_id=str(decision_id))
    if decision.state != DecisionState.AWAITING_SECOND:
        raise Conflict("this decision is not waiting for a second SLT member")
    return decision


def confirm(session: Session, principal: Principal, decision_id: uuid.UUID,
            note: str) -> ReviewDecision:
    """The second SLT member agrees: the decision is put in force."""
    principal.require(Role.SLT, Role.ADMIN)
    lock_for_change(session, principal.org_id)
    decision = _awaiting(session, principal, decision_id)
    note = _justification(note)
    if (decision.decided_by == principal.token_id
            or decision.decider_name.strip().casefold() == principal.name.strip().casefold()):
        raise Forbidden("a second, different SLT member must confirm this decision")
    media = _locked_media(session, principal, decision.media_id)
    if media.status in _DONE:
        raise Conflict("this image has already been deleted")
    _refuse_unfinished(session, media)
    wanted = [uuid.UUID(f) for f in decision.cleared_faces]
    faces = ReviewRepository(session).faces(media.id, wanted)
    if len(faces) != len(wanted) or any(
            f.match_status == MatchStatus.MATCHED or f.candidates for f in faces):
        raise Conflict("the faces in this image have changed since the decision was made; "
                       "decline it and decide again")
    decision.second_by = principal.token_id
    decision.second_name = principal.name
    decision.second_note = note
    decision.second_at = utcnow()
    _put_in_force(session, decision)
    audit(session, principal, "review.confirmed", f"media:{media.id}",
          {**_details(decision), "requested_by": decision.decider_name, "note": note})
    return decision


def decline(session: Session, principal: Principal, decision_id: uuid.UUID,
            note: str) -> ReviewDecision:
    """A second SLT member disagrees (or the first withdraws the request): nothing is
    granted."""
    principal.require(Role.SLT, Role.ADMIN)
    lock_for_change(session, principal.org_id)
    decision = _awaiting(session, principal, decision_id)
    note = _justification(note)
    decision.state = DecisionState.DECLINED.value
    decision.second_by = principal.token_id
    decision.second_name = principal.name
    decision.second_note = note
    decision.second_at = utcnow()
    session.flush()
    audit(session, principal, "review.declined", f"media:{decision.media_id}",
          {**_details(decision), "requested_by": decision.decider_name, "note": note})
    return decision


# Public names for the other review services (naming faces, bulk decisions): the same
# checks, never a copy of them.
justification_text = _justification
locked_media = _locked_media
refuse_unfinished = _refuse_unfinished
