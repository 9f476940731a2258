"""SLT review: one medium in detail, decisions with written justification, the second
SLT member's confirmation, and the pictures review needs (never public)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from models.orm import Channel, ReviewDecision
from services.api import present
from services.api import review_schemas as schemas
from services.api.deps import CurrentPrincipal, SessionDep, SettingsDep, StoreDep, Viewer
from services.review import decisions, images
from services.review.detail import ReviewView, review_view

router = APIRouter(prefix="/api/v1", tags=["review"])

# Pictures of children: never cached by a shared cache, and not kept by the browser.
_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def decision_out(d: ReviewDecision) -> schemas.DecisionOut:
    return schemas.DecisionOut(
        id=d.id, media_id=d.media_id, kind=d.kind, channels=d.channels,
        cleared_faces=[uuid.UUID(f) for f in d.cleared_faces], justification=d.justification,
        state=d.state, decided_by=d.decider_name, created_at=d.created_at,
        second_by=d.second_name, second_note=d.second_note, second_at=d.second_at,
    )


def picture_url(media_id: uuid.UUID, frame: int | None = None) -> str:
    suffix = "" if frame is None else f"?frame={frame}"
    return f"/api/v1/media/{media_id}/picture.jpg{suffix}"


def crop_url(media_id: uuid.UUID, face_id: uuid.UUID) -> str:
    return f"/api/v1/media/{media_id}/faces/{face_id}.jpg"


def detail_out(session: SessionDep, settings: SettingsDep, view: ReviewView,
               policy_doc: dict[str, object]) -> schemas.ReviewDetailOut:
    return schemas.ReviewDetailOut(
        media=present.media(session, settings, view.media, policy_doc, facts=view.facts,
                            decisions=view.decisions),
        flags=[schemas.FlagOut(code=f.code, text=f.text) for f in view.flags],
        faces=[
            schemas.ReviewFaceOut(
                id=f.face.id, number=f.number, frame=f.face.frame,
                box=(f.face.top, f.face.right, f.face.bottom, f.face.left), status=f.status,
                pupil_id=f.pupil.id if f.pupil else None,
                pupil_name=f"{f.pupil.given_name} {f.pupil.family_name}" if f.pupil else None,
                consents={c.channel: schemas.ConsentCellOut(allowed=c.allowed, text=c.text)
                          for c in f.consents},
                cleared_for=f.cleared_for, shown_on=f.shown_on,
                crop_url=crop_url(view.media.id, f.face.id),
            )
            for f in view.faces
        ],
        decisions=[decision_out(d) for d in view.history],
        picture_url=picture_url(view.media.id),
    )


@router.get("/review/{media_id}")
def review_one(media_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
               principal: CurrentPrincipal) -> schemas.ReviewDetailOut:
    view = review_view(session, principal, media_id)
    return detail_out(session, settings, view, principal.org.policy)


@router.post("/media/{media_id}/decisions", status_code=status.HTTP_201_CREATED)
def decide(media_id: uuid.UUID, body: schemas.DecisionIn, session: SessionDep,
           settings: SettingsDep, principal: CurrentPrincipal) -> schemas.DecisionOut:
    """Approve for channels, approve a blurred copy (`redact`), or reject (deletes the
    files). `cleared_faces` clears unknown or uncertain faces; where the policy wants a
    second SLT member the decision comes back `awaiting_second`."""
    decision = decisions.record_decision(
        session, settings, principal, media_id,
        decisions.DecisionRequest(kind=body.kind, justification=body.justification,
                                  channels=tuple(body.channels),
                                  cleared_faces=tuple(body.cleared_faces)),
    )
    return decision_out(decision)


@router.post("/review/decisions/{decision_id}/confirm")
def confirm(decision_id: uuid.UUID, body: schemas.SecondIn, session: SessionDep,
            principal: CurrentPrincipal) -> schemas.DecisionOut:
    return decision_out(decisions.confirm(session, principal, decision_id, body.note))


@router.post("/review/decisions/{decision_id}/decline")
def decline(decision_id: uuid.UUID, body: schemas.SecondIn, session: SessionDep,
            principal: CurrentPrincipal) -> schemas.DecisionOut:
    return decision_out(decisions.decline(session, principal, decision_id, body.note))


@router.get("/media/{media_id}/picture.jpg", response_class=Response)
def picture(media_id: uuid.UUID, session: SessionDep, store: StoreDep,
            settings: SettingsDep, viewer: Viewer, frame: int | None = None,
            thumb: bool = False) -> Response:
    """The medium as a clean JPEG (a video: one sampled frame, by default the one with
    the most faces). SLT and admins, or the uploader."""
    media = images.viewable_media(session, viewer, media_id)
    chosen = images.default_frame(media) if frame is None else frame
    return Response(images.view_jpeg(store, settings, media, chosen, thumb=thumb),
                    media_type="image/jpeg", headers=_PRIVATE)


@router.get("/media/{media_id}/faces/{face_id}.jpg", response_class=Response)
def face_crop(media_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep,
              store: StoreDep, settings: SettingsDep, viewer: Viewer) -> Response:
    media = images.viewable_media(session, viewer, media_id)
    return Response(images.face_jpeg(store, settings, media, face_id),
                    media_type="image/jpeg", headers=_PRIVATE)


@router.get("/media/{media_id}/blurred-preview.jpg", response_class=Response)
def blurred_preview(media_id: uuid.UUID, channel: Channel, session: SessionDep,
                    store: StoreDep, settings: SettingsDep, viewer: Viewer) -> Response:
    """What a blurred copy for the channel would look like (SLT and admins)."""
    viewer.require(*images.REVIEWERS)
    media = images.viewable_media(session, viewer, media_id)
    return Response(images.preview_jpeg(session, store, settings, media, channel),
                    media_type="image/jpeg", headers=_PRIVATE)


@router.get("/pupils/{pupil_id}/reference-photos/{photo_id}.jpg", response_class=Response)
def reference_photo(pupil_id: uuid.UUID, photo_id: uuid.UUID, session: SessionDep,
                    store: StoreDep, settings: SettingsDep, viewer: Viewer) -> Response:
    return Response(
        images.reference_jpeg(session, store, settings, viewer, pupil_id, photo_id),
        media_type="image/jpeg", headers=_PRIVATE,
    )
