"""SLT review: one medium in detail, decisions with written justification, the second
SLT member's confirmation, and the pictures review needs (never public)."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from models.clock import utcnow
from models.orm import Channel, MediaKind, MediaStatus, ReviewDecision
from models.repositories.review import ReviewRepository
from services.api import present
from services.api import review_schemas as schemas
from services.api import schemas as api_schemas
from services.api.deps import (
    CurrentPrincipal,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
    Viewer,
)
from services.core.errors import InvalidInput
from services.core.policy import policy_of
from services.gate.decide import load_facts
from services.publish.clean import VIDEO_TYPE
from services.review import decisions, identify, images, queue
from services.review.detail import ReviewView, TrackView, review_view, view_of

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


def clip_url(media_id: uuid.UUID) -> str:
    return f"/api/v1/media/{media_id}/clip.webm"


def _seconds(frame: int, fps: float | None) -> float | None:
    return None if fps is None else round(frame / fps, 3)


def track_out(media_id: uuid.UUID, t: TrackView, fps: float | None) -> schemas.ReviewTrackOut:
    return schemas.ReviewTrackOut(
        track=t.track, number=t.number, face_ids=t.face_ids,
        representative_face_id=t.representative.face.id,
        first_frame=t.first_frame, last_frame=t.last_frame,
        start_seconds=_seconds(t.first_frame, fps), end_seconds=_seconds(t.last_frame, fps),
        status=t.status, pupil_id=t.pupil.id if t.pupil else None,
        pupil_name=f"{t.pupil.given_name} {t.pupil.family_name}" if t.pupil else None,
        consents={c.channel: schemas.ConsentCellOut(allowed=c.allowed, text=c.text)
                  for c in t.consents},
        cleared_for=t.cleared_for, shown_on=t.shown_on,
        thumbnail_urls=[crop_url(media_id, f.face.id) for f in t.thumbnails],
    )


def detail_out(session: SessionDep, settings: SettingsDep, view: ReviewView,
               policy_doc: dict[str, object], *,
               fps: float | None = None) -> schemas.ReviewDetailOut:
    video = view.media.kind == MediaKind.VIDEO
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
        tracks=[track_out(view.media.id, t, fps) for t in view.tracks],
        fps=fps,
        preview_url=clip_url(view.media.id) if video else None,
    )


@router.get("/review/{media_id}")
def review_one(media_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
               store: StoreDep, principal: CurrentPrincipal) -> schemas.ReviewDetailOut:
    view = review_view(session, principal, media_id)
    fps = images.video_fps(store, view.media) if view.tracks else None
    return detail_out(session, settings, view, principal.org.policy, fps=fps)


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


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@router.get("/media/{media_id}/clip.webm", response_class=Response)
def clip(media_id: uuid.UUID, session: SessionDep, store: StoreDep, viewer: Viewer,
         range_: Annotated[str | None, Header(alias="range")] = None) -> Response:
    """A clean preview of a video to play for review: every screened frame re-encoded
    into WebM, no sound, no metadata, never the uploaded file. SLT and admins, or the
    uploader. Made once and kept with the medium's derivatives; a single byte range may
    be asked for (players seek with them)."""
    media = images.viewable_media(session, viewer, media_id)
    body = images.preview_clip(store, media)
    headers = {**_PRIVATE, "Accept-Ranges": "bytes"}
    match = _RANGE.fullmatch(range_.strip()) if range_ else None
    if match is None or not (match[1] or match[2]):
        return Response(body, media_type=VIDEO_TYPE, headers=headers)
    size = len(body)
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        start, end = max(0, size - int(match[2])), size - 1
    if start >= size or start > end:
        return Response(status_code=status.HTTP_416_RANGE_NOT_SATISFIABLE,
                        headers={**headers, "Content-Range": f"bytes */{size}"})
    return Response(body[start:end + 1], status_code=status.HTTP_206_PARTIAL_CONTENT,
                    media_type=VIDEO_TYPE,
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"})


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


def identification_out(found: identify.Identified,
                       learnt: identify.TemplateOutcome | None = None,
                       ) -> schemas.IdentificationOut:
    r = found.record
    return schemas.IdentificationOut(
        id=r.id, media_id=r.media_id, face_id=r.face_id, pupil_id=r.pupil_id,
        previous_pupil_id=r.previous_pupil_id, state=r.state, justification=r.justification,
        decided_by=r.decider_name, second_by=r.second_name, created_at=r.created_at,
        publications_taken_down=found.taken_down,
        template=None if learnt is None else schemas.TemplateOut(
            added=learnt.added, code=learnt.code, reason=learnt.reason,
            details=learnt.details, templates=learnt.templates),
    )


@router.post("/media/{media_id}/faces/{face_id}/identify", status_code=status.HTTP_201_CREATED)
def identify_face(media_id: uuid.UUID, face_id: uuid.UUID, body: schemas.IdentifyIn,
                  session: SessionDep, sessions: SessionsDep, settings: SettingsDep,
                  store: StoreDep, principal: CurrentPrincipal) -> schemas.IdentificationOut:
    """SLT name the pupil a face shows. From then on the face counts as that pupil: their
    consent decides, and a withdrawal finds the photo. Correcting a recognised pupil comes
    back `awaiting_second` where the policy wants a second SLT member. 404 for a pupil of
    another organisation; 409 while screening is unfinished or stale.

    `add_as_template` also adds the face as an extra template of the pupil. The
    identification is committed first; the template follows in a transaction of its own,
    so a refusal (`template.added` false, with a `code`) never undoes the naming."""
    found = identify.identify(session, settings, principal, media_id, face_id,
                              body.pupil_id, body.justification)
    if not body.add_as_template:
        return identification_out(found)
    # The naming is durable before the template is tried (see identify.learn_from_naming).
    session.commit()
    return identification_out(found, identify.learn_from_naming(sessions, settings,
                                                                principal, found, store=store))


@router.post("/review/identifications/{record_id}/confirm")
def confirm_identification(record_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                           principal: CurrentPrincipal) -> schemas.IdentificationOut:
    return identification_out(identify.confirm(session, settings, principal, record_id))


# --- the work queue --------------------------------------------------------------------

MAX_LIMIT = 200
_STATUSES = {*queue.STATES, *(s.value for s in MediaStatus)}


@router.get("/review")
def review_queue(
    response: Response, session: SessionDep, settings: SettingsDep,
    principal: CurrentPrincipal,
    view: Literal["waiting", "decided", "all"] = "waiting",
    event: Annotated[str, Query(max_length=200)] = "",
    uploader: Annotated[str, Query(max_length=200)] = "",
    since: date | None = None,
    until: date | None = None,
    status_: Annotated[str, Query(alias="status", max_length=32)] = "",
    channel: Channel | None = None,
    reason: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Literal["oldest", "newest", "event", "uploader"] = "oldest",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=queue.SCAN_LIMIT)] = 0,
) -> list[schemas.QueueItemOut]:
    """The SLT work queue, as on the review page. `view=waiting` (default): media with a
    channel they were uploaded for still blocked and undecided, failures and flagged
    ones first; `decided`: SLT have decided every such channel; `all`. Filters: `event`
    and `uploader` (exact), `since`/`until` (the day taken, else uploaded), `status` (a
    queue state: published, allowed, decided, blocked; or a media status), `channel`,
    `reason` (a reason code), `q` (words in event, purpose, uploader or file name).
    `X-Total-Count` is the number matching, before `limit` and `offset`."""
    if status_ and status_ not in _STATUSES:
        raise InvalidInput("unknown status", status=status_, allowed=sorted(_STATUSES))
    f = queue.QueueFilter(view=view, event=event.strip(), uploader=uploader.strip(),
                          since=since, until=until, status=status_,
                          channel=channel.value if channel else "", reason=reason.strip(),
                          q=q.strip(), sort=sort)
    _every, found = queue.matching_entries(session, principal, f)
    response.headers["X-Total-Count"] = str(len(found))
    shown = found[offset:offset + limit]
    policy = policy_of(principal.org.policy)
    facts = load_facts(session, [e.media for e in shown])
    decided = ReviewRepository(session).decided([e.media.id for e in shown])
    today = utcnow().date()
    out = []
    for e in shown:
        v = view_of(session, e.media, policy, facts, e.decisions, today, history=False,
                    decided=e.media.id in decided)
        out.append(schemas.QueueItemOut(
            media=present.media(session, settings, e.media, principal.org.policy,
                                facts=facts, decisions=e.decisions),
            blocked_channels=v.blocked_channels,
            flags=[api_schemas.ReviewFlagOut(code=fl.code, text=fl.text) for fl in v.flags],
            waiting=e.waiting, targets=e.targets, file_name=e.media.file_name,
            uploaded_by=e.media.uploader_name,
            states={st.channel: schemas.ChannelStateOut(
                state=st.state, reason_codes=[r.as_json() for r in st.reasons])
                for st in e.states},
        ))
    return out
