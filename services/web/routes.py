"""The browser pages: sign-in, staff upload, SLT review, the consent register and the
audit log. Server-rendered; the upload page uses a little JavaScript for progress
bars and live status. Every page works from the same services as the API."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from models.clock import utcnow
from models.db import begin_write, transaction
from models.orm import (
    CAPTURE,
    BiometricBy,
    BiometricStatus,
    Channel,
    ConsentStatus,
    DecisionKind,
    Device,
    GivenBy,
    Media,
    MediaKind,
    MediaStatus,
    Role,
)
from models.repositories.audit import AuditRepository
from models.repositories.media import MediaRepository, PublicationRepository
from models.repositories.pupils import PupilRepository
from models.repositories.review import ReviewRepository
from services import words as app_words
from services.api import websession
from services.api.deps import (
    COOKIE,
    SIGNIN_COOKIE,
    OptionalUser,
    PageUser,
    PostingUser,
    SessionDep,
    SettingsDep,
    StoreDep,
    same_origin,
)
from services.api.errors import status_for
from services.api.forms import StrictFormRoute
from services.api.routes.pupils import MAX_REFERENCE_BYTES, template_age_days
from services.core import runtime
from services.core import tokens as api_keys
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.errors import (
    ConsentGateError,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from services.core.policy import policy_of
from services.gate.decide import consent_of, decide_media, load_facts, register_facts
from services.gate.reasons import Reason
from services.gate.rules import biometric_is_current
from services.imports import photos as photo_import
from services.imports import pupils as pupil_import
from services.publish import service as publishing
from services.register import service as register
from services.review import bulk, decisions, detail, identify, images, impact, queue
from services.sessions import service as photo_sessions
from services.takedown import service as takedown
from services.upload.service import UploadForm, accept_upload
from services.web import words

# StrictFormRoute: a multipart field that is not valid UTF-8 is refused, not stored garbled.
router = APIRouter(include_in_schema=False, route_class=StrictFormRoute)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = words.when
templates.env.filters["channel"] = words.channel_name
templates.env.filters["detail"] = words.detail_text
templates.env.filters["person"] = words.person
templates.env.globals.update(
    MEDIA_STATUS=words.MEDIA_STATUS, FACE_STATUS=words.FACE_STATUS, FACE_HELP=words.FACE_HELP,
    ACTIONS=words.ACTIONS, DETAIL_NAMES=words.DETAIL_NAMES, likeness=words.likeness,
)
templates.env.globals.update(
    CHANNEL_STATE=words.CHANNEL_STATE, reason_label=words.reason_label,
    BULK_ASK=words.BULK_ASK, BULK_DONE=words.BULK_DONE, audit_detail=words.audit_detail,
)
templates.env.filters["actor"] = words.actor
templates.env.globals.update(role_name=words.role_name, device_word=words.device_word,
                             photo_result_word=words.photo_result_word,
                             target_word=words.target_word,
                             audit_detail_words=words.audit_detail_words,
                             import_format=words.import_format)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

REVIEWERS = (Role.SLT, Role.ADMIN)
UPLOADERS = (Role.STAFF, Role.SLT, Role.ADMIN)

DONE = {
    "approved": "Approved. The decision and your reason are in the audit trail.",
    "approved_blurred": "Approved with faces blurred. The decision and your reason are in the "
                        "audit trail.",
    "awaiting": "Saved. A second SLT member must now confirm it before it counts.",
    "rejected": "Rejected. The photo's files have been deleted.",
    "confirmed": "Confirmed. The decision is now in force.",
    "declined": "Declined. Nothing was approved.",
    "published": "Published.",
    "consent": "Consent recorded.",
    "biometric": "Face-matching consent recorded.",
    "photo": "Enrolment photo added.",
    "pupil": "Pupil added.",
    "revoked": "Key revoked. It no longer works, and anyone signed in with it is signed out.",
    "session": "Photography session approved.",
}


def render(request: Request, name: str, user: websession.Current | None,
           status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, name,
        {"user": user, "me": user.principal if user else None,
         "csrf": user.csrf if user else "",
         "done": DONE.get(request.query_params.get("done", "")), **context},
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]*")


def _local(path: str | None) -> str:
    """Only this site's own paths: never redirect to another site after sign-in (no
    "//host", no backslashes, no whitespace or control characters browsers drop)."""
    return path if path and _LOCAL_PATH.fullmatch(path) else "/"


def _secure(request: Request, settings: SettingsDep) -> bool:
    return request.url.scheme == "https" or settings.public_base_url.startswith("https://")


# --------------------------------------------------------------------------- sign-in


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, settings: SettingsDep, next: str = "/") -> HTMLResponse:
    nonce = uuid.uuid4().hex
    response = render(request, "signin.html", None, next=_local(next), signin_csrf=nonce)
    # Double-submit token: a sign-in form posted from another site cannot know it.
    response.set_cookie(SIGNIN_COOKIE, nonce, httponly=True, samesite="strict",
                        secure=_secure(request, settings), max_age=3600, path="/signin")
    return response


@router.post("/signin", response_class=HTMLResponse)
def signin(request: Request, session: SessionDep, settings: SettingsDep,
           token: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
           next: Annotated[str, Form()] = "/") -> Response:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not same_origin(request) or not expected or not websession.csrf_ok(expected, csrf):
        return signin_page(request, settings, next)
    try:
        signed = websession.sign_in(session, token)
    except Unauthenticated:
        nonce = uuid.uuid4().hex
        response: Response = render(
            request, "signin.html", None, status=401, next=_local(next), signin_csrf=nonce,
            error="That key was not recognised, or it has been cancelled. Check you copied "
                  "all of it, or ask your ConsentGate administrator for a new one.")
        response.set_cookie(SIGNIN_COOKIE, nonce, httponly=True, samesite="strict",
                            secure=_secure(request, settings), max_age=3600, path="/signin")
        return response
    response = _redirect(_local(next))
    response.set_cookie(COOKIE, signed.secret, httponly=True, samesite="lax",
                        secure=_secure(request, settings),
                        max_age=websession.SESSION_HOURS * 3600, path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
def signout(request: Request, session: SessionDep, user: PostingUser) -> Response:
    websession.sign_out(session, request.cookies.get(COOKIE))
    response = _redirect("/signin")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return _redirect("/signin")
    if user.principal.role in REVIEWERS:
        return _redirect("/review")
    if user.principal.role == Role.STAFF:
        return _redirect("/upload")
    return render(request, "pipeline.html", user)


# --------------------------------------------------------------------------- upload


def _media_status(session: SessionDep, principal: Principal, media: Media) -> dict[str, Any]:
    """One plain result per upload for the person who uploaded it, in the words SLT see:
    published, ready, waiting for a senior leader, rejected (with the reason), or being
    checked. Never "Checked" in green while someone in it may not be shown."""
    policy = policy_of(principal.org.policy)
    channels = [c.value for c in policy.channels]
    facts = load_facts(session, [media])
    verdicts = decide_media(session, media, facts=facts, channels=channels)
    targets = queue.target_channels(media.purpose, policy)
    live = {p.channel for p in PublicationRepository(session).active_for_media([media.id])}
    states = queue.channel_states(media, targets, verdicts, facts, live,
                                  media.status == MediaStatus.REJECTED)
    faces = len(media.faces)
    done = media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING)
    published = [st.channel for st in states if st.state == queue.PUBLISHED]
    allowed = [st.channel for st in states if st.state == queue.ALLOWED]
    held = [st.channel for st in states if st.state in (queue.BLOCKED, queue.DECIDED)]

    def names(cs: list[str]) -> str:
        return ", ".join(words.channel_name(c) for c in cs)

    found = f"{words.faces_count(faces)} found. "
    if media.status == MediaStatus.QUEUED:
        tone, label, summary = "queued", "Waiting for the face check", ""
    elif media.status == MediaStatus.SCREENING:
        tone, label, summary = "screening", "Checking faces…", ""
    elif media.status == MediaStatus.FAILED:
        tone, label = "failed", "Face check failed"
        summary = ("A senior leader will look at it; you don't need to do anything.")
    elif media.status == MediaStatus.REJECTED:
        why = next((d.justification for d in reversed(
            ReviewRepository(session).for_media(media.id)) if d.kind == DecisionKind.REJECT),
            None)
        tone, label = "rejected", "Rejected"
        summary = ("A senior leader rejected it and it has been deleted"
                   + (f": “{why}”" if why else "") + ".")
    elif media.status == MediaStatus.PURGED:
        tone, label, summary = "purged", words.MEDIA_STATUS[media.status], ""
    elif published:
        tone, label = "published", "Published"
        summary = f"Published on: {names(published)}."
        if held:
            summary += f" Not on: {names(held)}."
    elif allowed and not held:
        tone, label = "ready", "Ready to publish"
        summary = found + f"Everyone in it may appear on: {names(allowed)}."
    else:
        tone, label = "needs_review", "Waiting for a senior leader"
        summary = found + "A senior leader needs to review it before it can be published"
        summary += f" on {names(held)}." if held else "."
        if allowed:
            summary += f" It may already appear on: {names(allowed)}."
    # What the upload said, kept: it is still shown after a reload.
    notes = []
    if media.status not in (MediaStatus.REJECTED, MediaStatus.PURGED):
        late = queue.retention_warning(media, utcnow().date())
        if late:
            notes.append(late)
        if media.device == Device.PERSONAL:
            notes.append("Taken on a personal device: delete the original from the device "
                         "(and any cloud backup of it).")
    return {"id": str(media.id), "status": media.status, "tone": tone, "label": label,
            "notes": notes,
            "done": done, "faces": faces, "allowed": allowed, "published": published,
            "summary": summary, "name": media.file_name or "",
            "states": [{"channel": st.channel, "state": st.state,
                        "label": words.CHANNEL_STATE[st.state]} for st in states]}


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    user.principal.require(*UPLOADERS)
    mine = MediaRepository(session).list_media(user.principal.org_id,
                                               uploaded_by=user.principal.token_id, limit=20)
    recent = [(m, _media_status(session, user.principal, m)) for m in mine]
    policy = policy_of(user.principal.org.policy)
    return render(request, "upload.html", user, recent=recent,
                  devices=[d.value for d in Device],
                  personal=policy.personal_devices,
                  **_upload_choices(session, user.principal))


@router.post("/upload/files")
def upload_file(
    request: Request,
    file: Annotated[UploadFile, File()],
    event: Annotated[str, Form(max_length=200)],
    purpose: Annotated[str, Form(max_length=500)],
    device: Annotated[Device, Form()],
    session: SessionDep, store: StoreDep, settings: SettingsDep, user: PostingUser,
    captured_on: Annotated[str, Form()] = "",
    session_id: Annotated[str, Form()] = "",
) -> JSONResponse:
    when = _date(captured_on, "the date it was taken")
    result = accept_upload(
        session, store, settings, user.principal, file.file,
        UploadForm(event=event, purpose=purpose, device=device, captured_on=when,
                   file_name=file.filename, session_id=_session_id(session_id)),
    )
    notices = list(result.notices)
    late = queue.retention_warning(result.media, utcnow().date())
    if late and result.media.retention_until >= utcnow().date():
        notices.append(late)
    return JSONResponse({**_media_status(session, user.principal, result.media),
                         "notices": notices, "name": file.filename or ""},
                        status_code=202)


@router.get("/upload/status/{media_id}")
def upload_status(media_id: uuid.UUID, session: SessionDep, user: PageUser) -> JSONResponse:
    media = images.viewable_media(session, user.principal, media_id)
    return JSONResponse(_media_status(session, user.principal, media),
                        headers={"Cache-Control": "no-store"})


def _date(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} is not a date (use the date picker)") from exc


# --------------------------------------------------------------------------- review


def _queue_filter(request: Request) -> queue.QueueFilter:
    q = request.query_params

    def pick(name: str, allowed: tuple[str, ...], default: str) -> str:
        value = q.get(name, default)
        return value if value in allowed else default

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(q.get(name, "").strip()) if q.get(name) else None
        except ValueError:
            return None

    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    return queue.QueueFilter(
        view=pick("view", queue.VIEWS, "waiting"), event=q.get("event", "")[:200],
        uploader=q.get("uploader", "")[:200], since=day("since"), until=day("until"),
        status=q.get("status", "")[:32], channel=q.get("channel", "")[:32],
        reason=q.get("reason", "")[:64], q=q.get("q", "")[:200],
        sort=pick("sort", queue.SORTS, "oldest"), page=page,
    )


@router.get("/review", response_class=HTMLResponse)
def review_list(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    f = _queue_filter(request)
    found = queue.queue_page(session, user.principal, f)
    reasons = {
        i.entry.media.id: {s.channel: words.reasons_for_people(s.reasons, i.view.pupils)
                           for s in i.entry.states if s.state == queue.BLOCKED}
        for i in found.items
    }
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return render(request, "review_list.html", user, found=found, f=f, reasons=reasons,
                  channels=[c.value for c in policy_of(user.principal.org.policy).channels],
                  page_link=lambda n: "/review?" + urlencode({**params, "page": n}),
                  notice=websession.notice_for(session, user, "/review"))


@router.post("/review/bulk", response_class=HTMLResponse)
def review_bulk(
    request: Request, session: SessionDep, user: PostingUser,
    action: Annotated[str, Form()],
    media: Annotated[list[uuid.UUID] | None, Form()] = None,
    event: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The summary page: what one decision for all of these would do. Nothing is decided
    until it is confirmed."""
    user.principal.require(*REVIEWERS)
    try:
        plan = bulk.plan(session, user.principal, action, media_ids=media or [],
                         event=event.strip())
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        return _bulk_error(request, session, user, exc)
    return render(request, "review_bulk.html", user, plan=plan, event=event.strip())


def _bulk_error(request: Request, session: SessionDep, user: websession.Current,
                exc: ConsentGateError) -> HTMLResponse:
    f = queue.QueueFilter()
    found = queue.queue_page(session, user.principal, f)
    return render(request, "review_list.html", user, status=status_for(exc), found=found, f=f,
                  reasons={}, error=exc.message,
                  channels=[c.value for c in policy_of(user.principal.org.policy).channels],
                  page_link=lambda n: f"/review?page={n}")


@router.post("/review/bulk/confirm", response_class=HTMLResponse)
def review_bulk_confirm(
    request: Request, session: SessionDep, settings: SettingsDep, user: PostingUser,
    action: Annotated[str, Form()],
    media: Annotated[list[uuid.UUID] | None, Form()] = None,
    justification: Annotated[str, Form()] = "",
) -> Response:
    """Decide each medium through the one decision path, each in its own transaction: one
    refusal does not undo the others, and the report says which were refused and why."""
    user.principal.require(*REVIEWERS)
    try:
        plan = bulk.plan(session, user.principal, action, media_ids=media or [])
        decisions.justification_text(justification)
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        return _bulk_error(request, session, user, exc)
    work = [(item.media.id, _media_label(item.media), plan.request_channels(item))
            for item in plan.items]
    # Each medium in a write unit of its own (on SQLite: BEGIN IMMEDIATE), with this
    # request's transaction ended first so it holds no lock while they run.
    session.commit()
    done: list[str] = []
    refused: list[str] = []
    for media_id, label, channels in work:
        try:
            with transaction(runtime.sessions()) as unit:
                decisions.record_decision(
                    unit, settings, user.principal, media_id,
                    decisions.DecisionRequest(kind=plan.kind, justification=justification,
                                              channels=channels))
            done.append(label)
        except ConsentGateError as exc:
            if isinstance(exc, Unauthenticated):
                raise
            refused.append(f"{label}: {exc.message}")
    verb = words.BULK_DONE[action]
    lines = [f"{verb}: {name}" for name in done] + [f"Not changed: {r}" for r in refused]
    with transaction(runtime.sessions()) as unit:
        websession.leave_notice(unit, user, "/review",
                                words.bulk_title(action, len(done), len(refused)), lines)
    return _redirect("/review?view=decided" if done and not refused else "/review")


def _media_label(media: Media) -> str:
    return f"{media.file_name or words.kind_word(media.kind)} ({media.event})"


def _review_page(request: Request, session: SessionDep, store: StoreDep,
                 settings: SettingsDep, user: websession.Current, media_id: uuid.UUID, *,
                 status: int = 200, error: str | None = None,
                 error_reasons: list[Reason] | None = None) -> HTMLResponse:
    view = detail.review_view(session, user.principal, media_id)
    media = view.media
    reasons = {c: words.reasons_for_people(d.reasons, view.pupils)
               for c, d in view.decisions.items()}
    picture: tuple[int, int] | None = None
    frame = images.default_frame(media)
    open_ = media.status not in (MediaStatus.REJECTED, MediaStatus.PURGED)
    # A screened video is played from its clean preview; anything else shows a picture.
    preview = (open_ and media.kind == MediaKind.VIDEO and media.frames_screened is not None
               and media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING))
    fps = images.video_fps(store, media) if view.tracks and open_ else None
    if open_ and not preview:
        try:
            pic = images.picture(store, settings, media, frame)
            picture = (pic.width, pic.height)
        except ConsentGateError:
            picture = None
    blurred_on = {
        c: [f.number for f in view.faces if c not in f.shown_on] for c in view.channels
    } if media.kind == MediaKind.IMAGE else {}
    # People seen for under half a second, none of them a pupil, are folded away.
    brief_frames = (fps or 25.0) / 2
    brief = [t for t in view.tracks
             if t.pupil is None and t.last_frame - t.first_frame + 1 < brief_frames]
    brief_numbers = {t.number for t in brief}
    brief_counts: dict[str, int] = {}
    for t in brief:
        brief_counts[t.status] = brief_counts.get(t.status, 0) + 1
    person = view.person_of_face
    cleared_numbers = {
        d.id: sorted({person[f] for f in d.cleared_faces if f in person})
        for d in view.awaiting
    }
    return render(
        request, "review_item.html", user, status=status, view=view, reasons=reasons,
        picture=picture, frame=frame, blurred_on=blurred_on, error=error,
        preview=preview, fps=fps,
        main_tracks=[t for t in view.tracks if t.number not in brief_numbers],
        brief_tracks=brief, brief_counts=sorted(brief_counts.items(), key=lambda i: -i[1]),
        cleared_numbers=cleared_numbers,
        error_reasons=words.reasons_for_people(error_reasons or [], view.pupils),
        can_confirm={d.id: d.decided_by != user.principal.token_id for d in view.awaiting},
        public_urls={p.id: takedown.public_url(settings, p) for p in view.publications},
        live={p.channel: p for p in view.publications},
        blur_approved=view.facts.approved_redacted.get(view.media.id, set()),
        notice=websession.notice_for(session, user, f"/review/{media_id}"),
        targets=queue.target_channels(media.purpose, view.policy),
        late=queue.retention_warning(media, utcnow().date()),
        naming={i.face_id: i for i in identify.awaiting(session, media.id)},
        can_confirm_naming={i.id: i.decided_by != user.principal.token_id
                            for i in identify.awaiting(session, media.id)},
    )


@router.get("/review/{media_id}", response_class=HTMLResponse)
def review_item(request: Request, media_id: uuid.UUID, session: SessionDep, store: StoreDep,
                settings: SettingsDep, user: PageUser) -> HTMLResponse:
    return _review_page(request, session, store, settings, user, media_id)


@router.post("/review/{media_id}/decide", response_class=HTMLResponse)
def review_decide(
    request: Request, media_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser,
    kind: Annotated[DecisionKind, Form()],
    justification: Annotated[str, Form()] = "",
    channels: Annotated[list[Channel] | None, Form()] = None,
    faces: Annotated[list[uuid.UUID] | None, Form()] = None,
    publish_now: Annotated[bool, Form()] = False,
    confirmed: Annotated[bool, Form()] = False,
) -> Response:
    user.principal.require(*REVIEWERS)
    if not confirmed:
        # Deleting for good, or approving a photo whose retention has (nearly) run out:
        # say what will happen and ask again.
        view = detail.review_view(session, user.principal, media_id)
        late = queue.retention_warning(view.media, utcnow().date())
        if kind == DecisionKind.REJECT or late:
            return render(request, "review_confirm.html", user, view=view, kind=kind.value,
                          justification=justification, channels=channels or [],
                          faces=faces or [], publish_now=publish_now, late=late,
                          live=view.publications)
    try:
        decision = decisions.record_decision(
            session, settings, user.principal, media_id,
            decisions.DecisionRequest(kind=kind, justification=justification,
                                      channels=tuple(channels or ()),
                                      cleared_faces=tuple(faces or ())),
        )
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        session.rollback()
        return _review_page(request, session, store, settings, user, media_id,
                            status=status_for(exc), error=exc.message)
    if decision.state != "in_force":
        # Honoured when the second SLT member confirms.
        decision.publish_on_confirm = publish_now
    # The decision is durable before anything is published: a failure to publish
    # must not lose it.
    session.commit()
    if kind == DecisionKind.REJECT:
        return _redirect(f"/review/{media_id}?done=rejected")
    if decision.state != "in_force":
        return _redirect(f"/review/{media_id}?done=awaiting")
    done = "approved_blurred" if kind == DecisionKind.REDACT else "approved"
    if publish_now:
        problems = _publish(session, store, settings, user.principal, media_id,
                            decision.channels, redact=kind == DecisionKind.REDACT)
        if problems:
            return _review_page(
                request, session, store, settings, user, media_id, status=409,
                error="Your decision was saved, but the photo was not published.",
                error_reasons=problems,
            )
        done = "published"
    return _redirect(f"/review/{media_id}?done={done}")


@router.get("/review/{media_id}/faces/{face_id}/name", response_class=HTMLResponse)
def review_name_face(request: Request, media_id: uuid.UUID, face_id: uuid.UUID,
                     session: SessionDep, user: PageUser, q: str = "") -> HTMLResponse:
    """Pick the pupil a face shows: the engine's candidates first, then a name search."""
    return _name_page(request, session, user, media_id, face_id, q=q)


def _name_page(request: Request, session: SessionDep, user: websession.Current,
               media_id: uuid.UUID, face_id: uuid.UUID, *, q: str = "",
               error: str | None = None, status: int = 200) -> HTMLResponse:
    view = detail.review_view(session, user.principal, media_id)
    face = next((f for f in view.faces if f.face.id == face_id), None)
    if face is None:
        raise NotFound("no such face in this image")
    candidates = [uuid.UUID(str(c["pupil_id"])) for c in (face.face.candidates or [])]
    found = identify.search(session, user.principal, q[:200], candidates)
    # Why "also use this face to recognise them" cannot be offered, per pupil (None: it can).
    offer = identify.template_offer(session, view.media, found)
    cannot_learn = {p.id: words.not_learnt(offer[p.id], f"{p.given_name} {p.family_name}")
                    for p in found if offer[p.id] is not None}
    return render(request, "review_name.html", user, status=status, view=view, face=face,
                  pupils=found, candidates=set(candidates), q=q, error=error,
                  cannot_learn=cannot_learn)


@router.post("/review/{media_id}/faces/{face_id}/identify", response_class=HTMLResponse)
def review_identify(
    request: Request, media_id: uuid.UUID, face_id: uuid.UUID, session: SessionDep,
    store: StoreDep, settings: SettingsDep, user: PostingUser,
    pupil_id: Annotated[uuid.UUID | None, Form()] = None,
    justification: Annotated[str, Form()] = "",
    add_as_template: Annotated[bool, Form()] = False,
) -> Response:
    try:
        if pupil_id is None:
            raise InvalidInput("choose the pupil this face shows")
        found = identify.identify(session, settings, user.principal, media_id, face_id,
                                  pupil_id, justification)
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        session.rollback()
        return _name_page(request, session, user, media_id, face_id, error=exc.message,
                          status=status_for(exc))
    learnt = None
    if add_as_template:
        # The naming is durable first; the template has a transaction of its own and a
        # refusal of it never undoes the naming (identify.learn_from_naming).
        session.commit()
        learnt = identify.learn_from_naming(runtime.sessions(), settings, user.principal,
                                            found, store=store)
        begin_write(session)  # the notice below is written in a write unit again
    pupil = register.get_pupil(session, user.principal, found.record.pupil_id)
    name = f"{pupil.given_name} {pupil.family_name}"
    lines = []
    if found.taken_down:
        lines.append(words.taken_down_count(found.taken_down))
    if learnt is not None and learnt.added:
        lines.append(words.learnt_line(name))
    elif learnt is not None:
        lines.append(words.not_learnt_line(learnt.code, name, learnt.details.get("gate")))
    title = (f"Named as {name}. Their consent now decides where it may appear."
             if found.record.state == "in_force" else
             f"Asked to correct it to {name}: a second SLT member must confirm it.")
    websession.leave_notice(session, user, f"/review/{media_id}", title, lines)
    return _redirect(f"/review/{media_id}")


@router.post("/review/identifications/{record_id}/confirm", response_class=HTMLResponse)
def review_identify_confirm(
    request: Request, record_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser, media_id: Annotated[uuid.UUID, Form()],
) -> Response:
    try:
        identify.confirm(session, settings, user.principal, record_id)
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        session.rollback()
        return _review_page(request, session, store, settings, user, media_id,
                            status=status_for(exc), error=exc.message)
    websession.leave_notice(session, user, f"/review/{media_id}",
                            "Confirmed: the face now counts as the pupil named.")
    return _redirect(f"/review/{media_id}")


def _publish(session: SessionDep, store: StoreDep, settings: SettingsDep,
             principal: Principal, media_id: uuid.UUID, channels: list[str], *,
             redact: bool) -> list[Reason]:
    """Publish to each channel; the reasons for any refusal. A refusal writes nothing but
    its audit event, which is kept. The page's own transaction is committed first:
    publishing makes its copy with no lock held and writes in its own transaction."""
    session.commit()
    problems: list[Reason] = []
    for channel in channels:
        try:
            publishing.publish(runtime.sessions(), session, store, settings, principal,
                               media_id, Channel(channel), redact=redact)
        except publishing.Blocked as exc:
            problems.extend(exc.reasons)
    return problems


@router.post("/review/{media_id}/publish", response_class=HTMLResponse)
def review_publish(
    request: Request, media_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser,
    channel: Annotated[Channel, Form()], redact: Annotated[bool, Form()] = False,
) -> Response:
    user.principal.require(*REVIEWERS)
    problems = _publish(session, store, settings, user.principal, media_id, [channel.value],
                        redact=redact)
    if problems:
        return _review_page(request, session, store, settings, user, media_id, status=409,
                            error="The photo was not published.", error_reasons=problems)
    return _redirect(f"/review/{media_id}?done=published")


@router.post("/review/{media_id}/unpublish", response_class=HTMLResponse)
def review_unpublish(
    request: Request, media_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser, channel: Annotated[Channel, Form()],
) -> Response:
    """Take the live copy on one channel down (SLT)."""
    user.principal.require(*REVIEWERS)
    try:
        publishing.unpublish(session, settings, user.principal, media_id, channel)
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        session.rollback()
        return _review_page(request, session, store, settings, user, media_id,
                            status=status_for(exc), error=exc.message)
    websession.leave_notice(session, user, f"/review/{media_id}",
                            f"Taken down from {words.channel_name(channel.value)}.")
    return _redirect(f"/review/{media_id}")


SECOND_DONE = {"confirm": "confirmed", "decline": "declined"}


@router.post("/review/decisions/{decision_id}/{action}", response_class=HTMLResponse)
def review_second(
    request: Request, decision_id: uuid.UUID, action: str, session: SessionDep,
    store: StoreDep, settings: SettingsDep, user: PostingUser,
    media_id: Annotated[uuid.UUID, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        if action == "confirm":
            confirmed = decisions.confirm(session, user.principal, decision_id, note)
            if confirmed.publish_on_confirm:
                session.commit()
                problems = _publish(session, store, settings, user.principal, media_id,
                                    confirmed.channels,
                                    redact=confirmed.kind == DecisionKind.REDACT)
                if problems:
                    return _review_page(
                        request, session, store, settings, user, media_id, status=409,
                        error="Confirmed, but the photo was not published.",
                        error_reasons=problems)
                return _redirect(f"/review/{media_id}?done=published")
        elif action == "decline":
            decisions.decline(session, user.principal, decision_id, note)
        else:
            raise InvalidInput("unknown action")
    except ConsentGateError as exc:
        if isinstance(exc, Unauthenticated):
            raise
        session.rollback()
        return _review_page(request, session, store, settings, user, media_id,
                            status=status_for(exc), error=exc.message)
    return _redirect(f"/review/{media_id}?done={SECOND_DONE[action]}")


@router.get("/published", response_class=HTMLResponse)
def published_library(request: Request, session: SessionDep, settings: SettingsDep,
                      user: PageUser, channel: str = "") -> HTMLResponse:
    """What is live on each channel now, newest first (SLT)."""
    user.principal.require(*REVIEWERS)
    channels = [c.value for c in policy_of(user.principal.org.policy).channels]
    chosen = channel if channel in channels else channels[0]
    live = PublicationRepository(session).list_publications(user.principal.org_id,
                                                           channel=chosen)
    media = {m.id: m for m in MediaRepository(session).get_many(
        user.principal.org_id, [p.media_id for p in live])}
    counts = {c: len(PublicationRepository(session).list_publications(
        user.principal.org_id, channel=c)) for c in channels}
    return render(request, "published.html", user, channels=channels, chosen=chosen,
                  live=[(p, media.get(p.media_id)) for p in live], counts=counts,
                  public_urls={p.id: takedown.public_url(settings, p) for p in live})


# --------------------------------------------------------------------------- register


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    return _register_page(request, session, user)


# Rows per register page: a class or two at a time; search and filters find the rest.
REGISTER_PAGE = 50


def _register_page(request: Request, session: SessionDep, user: websession.Current, *,
                   error: str | None = None, status: int = 200,
                   **extra: Any) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    repo = PupilRepository(session)
    query = request.query_params
    q = (query.get("q") or "").strip()[:100]
    year = (query.get("year") or "").strip()[:32]
    reg = (query.get("reg") or "").strip()[:32]
    page_text = query.get("page") or "1"
    page = max(1, int(page_text)) if page_text.isdigit() else 1
    pupils, total = repo.search(user.principal.org_id, q=q or None, year_group=year or None,
                                reg_group=reg or None, limit=REGISTER_PAGE,
                                offset=(page - 1) * REGISTER_PAGE)
    if not pupils and total and page > 1:
        # Past the last page (an old link, or leavers filtered out): show the last one.
        page = -(-total // REGISTER_PAGE)
        pupils, total = repo.search(user.principal.org_id, q=q or None,
                                    year_group=year or None, reg_group=reg or None,
                                    limit=REGISTER_PAGE, offset=(page - 1) * REGISTER_PAGE)
    ids = [p.id for p in pupils]
    newest = repo.newest_template_times(ids)
    histories = repo.biometric_histories(ids)
    counts = repo.template_counts(ids)
    years, regs = repo.groups(user.principal.org_id)
    facts = register_facts(session, ids)
    policy = policy_of(user.principal.org.policy)
    now = utcnow()
    today = local_today(policy)
    rows = []
    for p in pupils:
        biometric = biometric_is_current(histories.get(p.id, []))
        photos = counts.get(p.id, 0)
        age = template_age_days(newest.get(p.id), now)
        rows.append({
            "pupil": p,
            "biometric": biometric,
            "photos": photos,
            # Only where a new photo can be taken and used: consent to face matching
            # given, and the pupil still at the school.
            "reenrol": (words.reenrol_note(photos, age)
                        if biometric and p.active and policy.needs_reenrolment(age) else None),
            "consents": {
                c.value: words.consent_word(consent_of(facts, p.id, c.value, today)[0])
                for c in policy.channels
            },
        })
    pages = max(1, -(-total // REGISTER_PAGE))

    def link(to_page: int) -> str:
        params = {k: v for k, v in (("q", q), ("year", year), ("reg", reg)) if v}
        params["page"] = str(to_page)
        return "/register?" + urlencode(params)

    return render(request, "register.html", user, status=status, rows=rows, error=error,
                  channels=[c.value for c in policy.channels],
                  reenrol_after_days=policy.reenrol_after_days,
                  q=q, year=year, reg=reg, years=years, regs=regs, total=total, page=page,
                  pages=pages, first=(page - 1) * REGISTER_PAGE + 1 if total else 0,
                  last=min(total, page * REGISTER_PAGE),
                  prev_link=link(page - 1) if page > 1 else None,
                  next_link=link(page + 1) if page < pages else None, **extra)


@router.post("/register", response_class=HTMLResponse)
def register_add(
    request: Request, session: SessionDep, user: PostingUser,
    external_id: Annotated[str, Form()] = "", given_name: Annotated[str, Form()] = "",
    family_name: Annotated[str, Form()] = "", year_group: Annotated[str, Form()] = "",
) -> Response:
    user.principal.require(*REVIEWERS)
    fields = [external_id.strip(), given_name.strip(), family_name.strip(), year_group.strip()]
    try:
        if not all(fields):
            raise InvalidInput("fill in all four boxes to add a pupil")
        pupil = register.create_pupil(session, user.principal, external_id=fields[0],
                                      given_name=fields[1], family_name=fields[2],
                                      year_group=fields[3])
    except ConsentGateError as exc:
        session.rollback()
        return _register_page(request, session, user, error=exc.message,
                              status=status_for(exc))
    return _redirect(f"/register/{pupil.id}?done=pupil")


def _pupil_page(request: Request, session: SessionDep, user: websession.Current,
                pupil_id: uuid.UUID, *, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    pupil = register.get_pupil(session, user.principal, pupil_id)
    repo = PupilRepository(session)
    policy = policy_of(user.principal.org.policy)
    today = local_today(policy)
    # The publication channels, then capture (consent to being photographed at all).
    channels = [*(c.value for c in policy.channels), CAPTURE]
    latest = repo.latest_consents([pupil.id])
    facts = register_facts(session, [pupil.id])
    history = repo.consent_history(pupil.id)
    biometric = repo.biometric_history(pupil.id)
    return render(
        request, "pupil.html", user, status=status, pupil=pupil, error=error,
        channels=channels,
        current={c: (latest.get((pupil.id, c)),
                     words.consent_word(consent_of(facts, pupil.id, c, today)[0]))
                 for c in channels},
        givers={c: {g.value: facts.by_giver.get((pupil.id, c, g.value)) for g in GivenBy}
                for c in channels},
        pupil_needed=facts.needs_pupil.get(pupil.id, False),
        pupil_from_year=policy.pupil_consent_from_year,
        capture_required=policy.capture_consent_required,
        statuses=[s.value for s in ConsentStatus],
        history=list(reversed(history)), biometric=list(reversed(biometric)),
        biometric_current=biometric_is_current(biometric),
        photos=repo.references(pupil.id), today=today,
        notice=websession.notice_for(session, user, f"/register/{pupil.id}"),
    )


@router.get("/register/{pupil_id}", response_class=HTMLResponse)
def pupil_page(request: Request, pupil_id: uuid.UUID, session: SessionDep,
               user: PageUser) -> HTMLResponse:
    return _pupil_page(request, session, user, pupil_id)


@router.post("/register/{pupil_id}/consent", response_class=HTMLResponse)
def pupil_consent(
    request: Request, pupil_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser,
    channel: Annotated[str, Form()], status: Annotated[ConsentStatus, Form()],
    given_by: Annotated[GivenBy, Form()], evidence_ref: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
    confirmed: Annotated[bool, Form()] = False,
) -> Response:
    user.principal.require(*REVIEWERS)
    coming_down: list[impact.LiveCopy] = []
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        if not evidence_ref.strip():
            raise InvalidInput("say where the signed form or letter is kept (evidence)")
        until = _date(expires_on, "the end date")
        if status == ConsentStatus.WITHDRAWN:
            coming_down = impact.would_come_down(session, user.principal, pupil.id,
                                                 channel=channel)
            if not confirmed:
                # Say first which photos will be taken down, and from where.
                return render(request, "consent_confirm.html", user, pupil=pupil,
                              channel=channel, consent_status=status.value,
                              given_by=given_by.value, evidence_ref=evidence_ref,
                              expires_on=expires_on, coming_down=coming_down)
        if channel == CAPTURE:
            # Consent to being photographed: the same history and re-decision.
            register.set_capture_consent(
                session, settings, user.principal, pupil, status=status,
                given_by=given_by.value, evidence_ref=evidence_ref.strip()[:500],
                expires_on=until)
        else:
            register.set_publication_consent(
                session, settings, user.principal, pupil, _channel(channel), status=status,
                given_by=given_by.value, evidence_ref=evidence_ref.strip()[:500],
                expires_on=until,
            )
    except ConsentGateError as exc:
        session.rollback()
        return _pupil_page(request, session, user, pupil_id, error=exc.message,
                           status=status_for(exc))
    if status == ConsentStatus.WITHDRAWN:
        up = impact.still_live(session, [c.publication.id for c in coming_down])
        gone = [c for c in coming_down if c.publication.id not in up]
        lines = [words.taken_down_line(_media_label(c.media), c.publication.channel)
                 for c in gone]
        lines += [f"Still published (check it): {_media_label(c.media)}"
                  for c in coming_down if c.publication.id in up]
        websession.leave_notice(
            session, user, f"/register/{pupil_id}",
            f"Consent for {words.channel_name(channel)} withdrawn. "
            + words.taken_down_count(len(gone)), lines)
    return _redirect(f"/register/{pupil_id}?done=consent")


@router.post("/register/{pupil_id}/biometric", response_class=HTMLResponse)
def pupil_biometric(
    request: Request, pupil_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser,
    status: Annotated[BiometricStatus, Form()], by: Annotated[BiometricBy, Form()],
    evidence_ref: Annotated[str, Form()] = "",
    confirmed: Annotated[bool, Form()] = False,
) -> Response:
    user.principal.require(*REVIEWERS)
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        if not evidence_ref.strip():
            raise InvalidInput("say where the signed form or letter is kept (evidence)")
        ending = status != BiometricStatus.GRANTED
        coming_down: list[impact.LiveCopy] = []
        photos = 0
        if ending:
            coming_down = impact.would_come_down(session, user.principal, pupil.id,
                                                 biometric_ended=True)
            photos = PupilRepository(session).template_count(pupil.id)
        if ending and not confirmed:
            # An objection or withdrawal deletes the enrolment photos and ends matching:
            # say so, and which published photos come down, before doing it.
            return render(
                request, "biometric_confirm.html", user, pupil=pupil,
                bio_status=status.value, by=by.value, evidence_ref=evidence_ref,
                photos=photos, coming_down=coming_down)
        register.record_biometric(session, settings, user.principal, pupil, status=status,
                                  by=by.value, evidence_ref=evidence_ref.strip()[:500])
    except ConsentGateError as exc:
        session.rollback()
        return _pupil_page(request, session, user, pupil_id, error=exc.message,
                           status=status_for(exc))
    if ending:
        up = impact.still_live(session, [c.publication.id for c in coming_down])
        lines = [words.taken_down_line(_media_label(c.media), c.publication.channel)
                 for c in coming_down if c.publication.id not in up]
        left = PupilRepository(session).template_count(pupil.id)
        websession.leave_notice(
            session, user, f"/register/{pupil_id}",
            words.biometric_report(status.value, photos - left, len(lines)), lines)
    return _redirect(f"/register/{pupil_id}?done=biometric")


@router.post("/register/{pupil_id}/photos", response_class=HTMLResponse)
def pupil_photo(
    request: Request, pupil_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser, file: Annotated[UploadFile, File()],
) -> Response:
    user.principal.require(*REVIEWERS)
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        data = file.file.read(MAX_REFERENCE_BYTES + 1)
        if len(data) > MAX_REFERENCE_BYTES:
            raise TooLarge("the photo is larger than 25 MiB")
        if not data:
            raise InvalidInput("choose a photo first")
        register.add_reference_photo(session, store, settings, user.principal, pupil, data)
    except ConsentGateError as exc:
        session.rollback()
        return _pupil_page(request, session, user, pupil_id, error=exc.message,
                           status=status_for(exc))
    return _redirect(f"/register/{pupil_id}?done=photo")


# --------------------------------------------------------------------------- audit


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, user: PageUser,
               before: int | None = None) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    page = 100
    events = AuditRepository(session).list_events(user.principal.org_id, limit=page,
                                                  before_id=before)
    pupil_ids = [uuid.UUID(e.target.split(":", 1)[1]) for e in events
                 if e.target.startswith("pupil:")]
    pupil_ids += [uuid.UUID(str(e.details[k])) for e in events
                  for k in ("pupil", "previous_pupil") if e.details.get(k)]
    pupils = PupilRepository(session).get_many(pupil_ids)
    names = {f"pupil:{p.id}": f"{p.given_name} {p.family_name}" for p in pupils.values()}
    older = events[-1].id if len(events) == page else None
    return render(request, "audit.html", user, events=events, names=names, older=older)


def signin_redirect(next_path: str) -> RedirectResponse:
    return _redirect("/signin?next=" + quote(_local(next_path)))


# ------------------------------------------------------- register import (issue 10)


@router.get("/register/import/template.csv")
def register_import_template(user: PageUser) -> Response:
    user.principal.require(*REVIEWERS)
    return Response(pupil_import.template_csv(), media_type="text/csv", headers={
        **SECURITY_HEADERS,
        "Content-Disposition": 'attachment; filename="consentgate-pupils.csv"'})


@router.post("/register/import", response_class=HTMLResponse)
def register_import(
    request: Request, session: SessionDep, settings: SettingsDep, user: PostingUser,
    file: Annotated[UploadFile | None, File()] = None,
    content: Annotated[str, Form()] = "",
    sync: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "preview",
) -> Response:
    """Preview (a dry run: counts, or every error) first; the preview page carries the
    checked file on to the Import button, so it need not be chosen again."""
    user.principal.require(*REVIEWERS)
    try:
        if content:
            data = base64.b64decode(content.encode(), validate=True)
        elif file is not None:
            data = file.file.read(pupil_import.MAX_BYTES + 1)
        else:
            data = b""
        if not data:
            raise InvalidInput("choose a CSV file first")
        dry_run = action != "import"
        result = pupil_import.import_pupils(session, settings, user.principal, data,
                                            sync=bool(sync), dry_run=dry_run)
    except (ConsentGateError, binascii.Error) as exc:
        session.rollback()
        problem = exc if isinstance(exc, ConsentGateError) else InvalidInput(
            "the checked file was damaged; choose it again")
        errors = problem.details.get("errors") if isinstance(problem, InvalidInput) else None
        return _register_page(request, session, user, error=problem.message,
                              status=status_for(problem), import_errors=errors or [])
    if dry_run:
        return _register_page(request, session, user, preview=result.as_json(),
                              preview_content=base64.b64encode(data).decode(),
                              preview_sync=bool(sync))
    return _register_page(request, session, user, imported=result.as_json())


# ------------------------------------------------------------- API keys (issue 10)


MAX_PHOTO_ZIP = 512 * 1024 * 1024

KEY_LIFETIMES = {"": None, "30d": "30d", "90d": "90d", "365d": "365d"}


def _keys_page(request: Request, session: SessionDep, user: websession.Current, *,
               error: str | None = None, status: int = 200, **extra: Any) -> HTMLResponse:
    user.principal.require(Role.ADMIN)
    now = utcnow()
    keys = [{"token": t, "state": api_keys.state(t, now)}
            for t in api_keys.list_tokens(session, user.principal.org_id)]
    return render(request, "keys.html", user, status=status, error=error, keys=keys,
                  roles=[r.value for r in Role], **extra)


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    return _keys_page(request, session, user)


@router.post("/keys", response_class=HTMLResponse)
def keys_create(
    request: Request, session: SessionDep, user: PostingUser,
    name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "",
    expires_in: Annotated[str, Form()] = "",
) -> Response:
    user.principal.require(Role.ADMIN)
    try:
        if not name.strip() or role not in {r.value for r in Role}:
            raise InvalidInput("give the key a name (who holds it) and a role")
        if expires_in not in KEY_LIFETIMES:
            raise InvalidInput("choose how long the key lasts")
        lifetime = api_keys.parse_duration(expires_in) if expires_in else None
        issued = api_keys.create(session, user.principal, user.principal.org, Role(role),
                                 name.strip()[:200], lifetime)
    except ConsentGateError as exc:
        session.rollback()
        return _keys_page(request, session, user, error=exc.message, status=status_for(exc))
    return _keys_page(request, session, user, new_secret=issued.secret,
                      new_name=issued.token.name)


@router.post("/keys/{token_id}/revoke", response_class=HTMLResponse)
def keys_revoke(request: Request, token_id: uuid.UUID, session: SessionDep,
                user: PostingUser) -> Response:
    user.principal.require(Role.ADMIN)
    try:
        api_keys.revoke(session, user.principal, token_id, user.principal.org_id)
    except ConsentGateError as exc:
        session.rollback()
        return _keys_page(request, session, user, error=exc.message, status=status_for(exc))
    if token_id == user.principal.token_id:
        # Your own key: this session has just ended with it.
        return _redirect("/signin")
    return _redirect("/keys?done=revoked")


@router.post("/register/import-photos", response_class=HTMLResponse)
def register_import_photos(
    request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep,
    user: PostingUser, file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """A zip of enrolment photos named by UPN. The request's own transaction ends before
    the face engine runs (seconds a photo); the templates are stored in one short write
    transaction under the gate lock, where consent is checked again."""
    user.principal.require(*REVIEWERS)
    try:
        data = file.file.read(MAX_PHOTO_ZIP + 1) if file is not None else b""
        if not data:
            raise InvalidInput("choose a zip of photos first")
        if len(data) > MAX_PHOTO_ZIP:
            raise TooLarge("the zip is larger than 512 MiB; split it into several")
        planned = photo_import.plan(session, user.principal, photo_import.entries_from_zip(
            data))
        session.commit()  # no database lock is held while the engine works
        photo_import.compute(settings, planned)
        with transaction(runtime.sessions()) as write:
            outcome = photo_import.store_all(write, store, settings, user.principal, planned)
    except ConsentGateError as exc:
        session.rollback()
        return _register_page(request, session, user, error=exc.message,
                              status=status_for(exc))
    results = [{"file": r.file, "result": r.result,
                "words": (app_words.photo_refusal_text(r.reason, r.data) if r.reason
                          else app_words.PHOTO_RESULTS[r.result])}
               for r in outcome.results]
    return _register_page(request, session, user, photo_results=results,
                          photo_counts=outcome.counts())


# --------------------------------------------------------------------------- consent forms


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError as exc:
        raise InvalidInput(f"unknown channel {value!r}") from exc


@router.post("/register/{pupil_id}/consents", response_class=HTMLResponse)
def pupil_consent_form(
    request: Request, pupil_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
    user: PostingUser,
    given_by: Annotated[GivenBy, Form()], evidence_ref: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
    website: Annotated[str, Form()] = "", social_media: Annotated[str, Form()] = "",
    newsletter: Annotated[str, Form()] = "", press: Annotated[str, Form()] = "",
    display: Annotated[str, Form()] = "", capture: Annotated[str, Form()] = "",
) -> Response:
    """One paper form: a status for each channel and for being photographed, from one
    person, one evidence reference. A channel left at "no change" is not recorded."""
    user.principal.require(*REVIEWERS)
    chosen = {"website": website, "social_media": social_media, "newsletter": newsletter,
              "press": press, "display": display, CAPTURE: capture}
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        statuses: dict[str, ConsentStatus] = {}
        for kind, value in chosen.items():
            if value.strip():
                try:
                    statuses[kind] = ConsentStatus(value.strip())
                except ValueError as exc:
                    raise InvalidInput(f"unknown status {value!r}") from exc
        if not statuses:
            raise InvalidInput("choose granted, refused or withdrawn for at least one line")
        register.record_consents(
            session, settings, user.principal, pupil, statuses, given_by=given_by.value,
            evidence_ref=evidence_ref.strip()[:500],
            expires_on=_date(expires_on, "the end date"))
    except ConsentGateError as exc:
        session.rollback()
        return _pupil_page(request, session, user, pupil_id, error=exc.message,
                           status=status_for(exc))
    return _redirect(f"/register/{pupil_id}?done=consent")


# --------------------------------------------------------------------------- sessions


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    return _sessions_page(request, session, user)


def _sessions_page(request: Request, session: SessionDep, user: websession.Current, *,
                   error: str | None = None, status: int = 200) -> HTMLResponse:
    user.principal.require(*UPLOADERS)
    policy = policy_of(user.principal.org.policy)
    slt = user.principal.role in REVIEWERS
    people = photo_sessions.people(session, user.principal) if slt else []
    names = {str(p.id): p.name for p in people}
    return render(request, "sessions.html", user, status=status, error=error,
                  sessions=photo_sessions.visible_sessions(session, user.principal),
                  purposes=policy.purposes, people=people, names=names, can_create=slt,
                  devices=[d.value for d in Device
                           if d != Device.PERSONAL or policy.personal_devices != "forbidden"],
                  retention={p.name: policy.retention_for(p.name) for p in policy.purposes})


@router.post("/sessions", response_class=HTMLResponse)
def sessions_create(
    request: Request, session: SessionDep, user: PostingUser,
    event: Annotated[str, Form(max_length=200)] = "",
    purpose: Annotated[str, Form(max_length=200)] = "",
    dates: Annotated[str, Form(max_length=2000)] = "",
    staff: Annotated[list[uuid.UUID] | None, Form()] = None,
    devices: Annotated[list[Device] | None, Form()] = None,
) -> Response:
    user.principal.require(*REVIEWERS)
    try:
        days = [_date(d, "a session date") for d in re.split(r"[\s,]+", dates) if d.strip()]
        photo_sessions.create_session(
            session, user.principal, event=event, purpose=purpose,
            dates=[d for d in days if d is not None], staff=staff or [],
            devices=devices or [])
    except ConsentGateError as exc:
        session.rollback()
        return _sessions_page(request, session, user, error=exc.message,
                              status=status_for(exc))
    return _redirect("/sessions?done=session")


def _upload_choices(session: SessionDep, principal: Principal) -> dict[str, Any]:
    """The upload page's purposes (a list, never free text) and the photography sessions
    the uploader is on (SLT see all)."""
    policy = policy_of(principal.org.policy)
    return {"purposes": policy.purpose_names(),
            "sessions": photo_sessions.visible_sessions(session, principal),
            "sessions_required": policy.photography_sessions_required}


def _session_id(text: str) -> uuid.UUID | None:
    text = text.strip()
    if not text:
        return None
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise InvalidInput("choose the photography session from the list") from exc
