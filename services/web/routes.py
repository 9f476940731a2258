"""The browser pages: sign-in, staff upload, SLT review, the consent register and the
audit log. Server-rendered; the upload page uses a little JavaScript for progress
bars and live status. Every page works from the same services as the API."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from models.clock import utcnow
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
from models.repositories.media import MediaRepository
from models.repositories.pupils import PupilRepository
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
from services.api.routes.pupils import MAX_REFERENCE_BYTES, template_age_days
from services.core import runtime
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.errors import ConsentGateError, InvalidInput, TooLarge, Unauthenticated
from services.core.policy import policy_of
from services.gate.decide import consent_of, decide_media, register_facts
from services.gate.reasons import Reason
from services.gate.rules import biometric_is_current
from services.publish import service as publishing
from services.register import service as register
from services.review import decisions, detail, images
from services.sessions import service as photo_sessions
from services.takedown import service as takedown
from services.upload.service import UploadForm, accept_upload
from services.web import words

router = APIRouter(include_in_schema=False)

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
    policy = policy_of(principal.org.policy)
    channels = [c.value for c in policy.channels]
    verdicts = decide_media(session, media, channels=channels)
    allowed = [c for c, d in verdicts.items() if d.allowed]
    faces = len(media.faces)
    done = media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING)
    found = f"{faces} face{'s' if faces != 1 else ''} found. "
    if media.status == MediaStatus.QUEUED:
        summary = "Waiting for the face check…"
    elif media.status == MediaStatus.SCREENING:
        summary = "Checking faces…"
    elif media.status == MediaStatus.FAILED:
        summary = ("The face check failed. A senior leader will look at it; you don't need "
                   "to do anything.")
    elif media.status in (MediaStatus.REJECTED, MediaStatus.PURGED):
        summary = words.MEDIA_STATUS[media.status] + "."
    elif allowed:
        summary = found + "Everyone in it may appear on: " + ", ".join(
            words.channel_name(c) for c in allowed) + "."
    elif media.status == MediaStatus.NEEDS_REVIEW:
        summary = found + "A senior leader needs to review it before it can be published."
    else:
        summary = found + "It needs a senior leader's approval before it can be published."
    return {"id": str(media.id), "status": media.status,
            "label": words.MEDIA_STATUS.get(media.status, media.status), "done": done,
            "faces": faces, "allowed": allowed, "summary": summary}


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
                   session_id=_session_id(session_id)),
    )
    return JSONResponse({**_media_status(session, user.principal, result.media),
                         "notices": result.notices, "name": file.filename or ""},
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


@router.get("/review", response_class=HTMLResponse)
def review_list(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    views = detail.queue_views(session, user.principal)
    reasons = {
        v.media.id: {c: words.reasons_for_people(d.reasons, v.pupils)
                     for c, d in v.decisions.items() if not d.allowed}
        for v in views
    }
    return render(request, "review_list.html", user, views=views, reasons=reasons)


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
) -> Response:
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
            decisions.confirm(session, user.principal, decision_id, note)
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


# --------------------------------------------------------------------------- register


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    return _register_page(request, session, user)


def _register_page(request: Request, session: SessionDep, user: websession.Current, *,
                   error: str | None = None, status: int = 200) -> HTMLResponse:
    user.principal.require(*REVIEWERS)
    repo = PupilRepository(session)
    pupils = repo.list_pupils(user.principal.org_id)
    facts = register_facts(session, [p.id for p in pupils])
    newest = repo.newest_template_times(p.id for p in pupils)
    policy = policy_of(user.principal.org.policy)
    now = utcnow()
    today = local_today(policy)
    rows = []
    for p in pupils:
        biometric = biometric_is_current(repo.biometric_history(p.id))
        photos = repo.template_count(p.id)
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
    return render(request, "register.html", user, status=status, rows=rows, error=error,
                  channels=[c.value for c in policy.channels],
                  reenrol_after_days=policy.reenrol_after_days)


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
) -> Response:
    user.principal.require(*REVIEWERS)
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        if not evidence_ref.strip():
            raise InvalidInput("say where the signed form or letter is kept (evidence)")
        until = _date(expires_on, "the end date")
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
    return _redirect(f"/register/{pupil_id}?done=consent")


@router.post("/register/{pupil_id}/biometric", response_class=HTMLResponse)
def pupil_biometric(
    request: Request, pupil_id: uuid.UUID, session: SessionDep, store: StoreDep,
    settings: SettingsDep, user: PostingUser,
    status: Annotated[BiometricStatus, Form()], by: Annotated[BiometricBy, Form()],
    evidence_ref: Annotated[str, Form()] = "",
) -> Response:
    user.principal.require(*REVIEWERS)
    try:
        pupil = register.get_pupil(session, user.principal, pupil_id)
        if not evidence_ref.strip():
            raise InvalidInput("say where the signed form or letter is kept (evidence)")
        register.record_biometric(session, settings, user.principal, pupil, status=status,
                                  by=by.value, evidence_ref=evidence_ref.strip()[:500])
    except ConsentGateError as exc:
        session.rollback()
        return _pupil_page(request, session, user, pupil_id, error=exc.message,
                           status=status_for(exc))
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
    pupils = PupilRepository(session).get_many(pupil_ids)
    names = {f"pupil:{p.id}": f"{p.given_name} {p.family_name}" for p in pupils.values()}
    older = events[-1].id if len(events) == page else None
    return render(request, "audit.html", user, events=events, names=names, older=older)


def signin_redirect(next_path: str) -> RedirectResponse:
    return _redirect("/signin?next=" + quote(_local(next_path)))


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
