from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Response, UploadFile, status

from models.orm import Channel, Device, MediaStatus, Role
from models.repositories.media import MediaRepository, PublicationRepository
from services.api import present, schemas
from services.api.deps import (
    CurrentPrincipal,
    ReadPrincipal,
    ReadSessionDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
)
from services.api.forms import StrictFormRoute, text_check
from services.core import validate
from services.core.errors import ConsentGateError
from services.gate.media import get_media
from services.gate.reasons import Reason
from services.publish import service as publishing
from services.review import service as review
from services.screen import service as screening
from services.upload.service import UploadForm, accept_upload

# StrictFormRoute: a form field that is not valid UTF-8 is refused, not stored garbled.
router = APIRouter(prefix="/api/v1", tags=["media"], route_class=StrictFormRoute)


@router.post("/media", status_code=status.HTTP_202_ACCEPTED)
def upload(
    file: Annotated[UploadFile, File()],
    event: Annotated[str, Form(min_length=1, max_length=200), text_check(200, "event")],
    device: Annotated[Device, Form()],
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    captured_on: Annotated[date | None, Form()] = None,
    purpose: Annotated[str, Form(max_length=500, description=(
        "one of the policy's purposes (case-insensitive; 422 lists them as `allowed`); "
        "may be left out when session_id names a session")), text_check(500, "purpose")] = "",
    session_id: Annotated[uuid.UUID | None, Form(description=(
        "the photography session the photos were taken at"))] = None,
) -> schemas.UploadOut:
    result = accept_upload(
        session, store, settings, principal, file.file,
        UploadForm(event=event, purpose=purpose, device=device, captured_on=captured_on,
                   file_name=file.filename, session_id=session_id),
    )
    return schemas.UploadOut(id=result.media.id, status=result.media.status,
                             notices=result.notices)


@router.get("/media")
def list_media(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
               limit: int = 50, offset: int = 0,
               ) -> list[schemas.MediaOut] | list[schemas.PublisherMediaOut]:
    """Newest first. The publisher role gets `PublisherMediaOut` items: only what
    publishing needs."""
    limit, offset = validate.paging(limit, offset)
    mine = principal.token_id if principal.role == Role.STAFF else None
    # Purged media answer 410 on their own URL and are left out of listings.
    kept = [s.value for s in MediaStatus if s != MediaStatus.PURGED]
    items = MediaRepository(session).list_media(principal.org_id, uploaded_by=mine,
                                          statuses=kept, limit=limit, offset=offset)
    if principal.role == Role.PUBLISHER:
        return [present.publisher_media(session, settings, m) for m in items]
    return [present.media(session, settings, m, principal.org.policy) for m in items]


@router.get("/media/{media_id}")
def media_detail(media_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
              principal: CurrentPrincipal) -> schemas.MediaOut | schemas.PublisherMediaOut:
    """The publisher role gets `PublisherMediaOut`: only what publishing needs."""
    m = get_media(session, principal, media_id)
    if principal.role == Role.PUBLISHER:
        return present.publisher_media(session, settings, m)
    return present.media(session, settings, m, principal.org.policy)


@router.post("/media/{media_id}/publications", status_code=status.HTTP_201_CREATED)
def publish(media_id: uuid.UUID, body: schemas.PublishIn, response: Response,
            sessions: SessionsDep, session: ReadSessionDep, store: StoreDep,
            settings: SettingsDep, principal: ReadPrincipal,
            idempotency_key: Annotated[str | None, Header(max_length=200),
                                       text_check(200, "Idempotency-Key")] = None,
            ) -> schemas.PublicationOut:
    """201 with the new live copy; 200 with the existing one if the medium is already
    live on the channel, or if this `Idempotency-Key` was seen before; 409 with reasons
    if the gate refuses."""
    try:
        result = publishing.publish(sessions, session, store, settings, principal, media_id,
                                    body.channel, redact=body.redact,
                                    idempotency_key=idempotency_key)
    except ConsentGateError as exc:
        if principal.role == Role.PUBLISHER:
            _for_publisher(exc)
        raise
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return present.publication(settings, result.publication)


@router.delete("/media/{media_id}/publications/{channel}")
def unpublish(media_id: uuid.UUID, channel: Channel, session: SessionDep,
              settings: SettingsDep, principal: CurrentPrincipal) -> schemas.PublicationOut:
    """Takes down every live copy of the medium on the channel."""
    taken = publishing.unpublish(session, settings, principal, media_id, channel)
    return present.publication(settings, taken[0])


@router.post("/media/{media_id}/approvals", status_code=status.HTTP_201_CREATED)
def approve(media_id: uuid.UUID, body: schemas.ApprovalIn, session: SessionDep,
            settings: SettingsDep, principal: CurrentPrincipal) -> schemas.MediaOut:
    review.approve(session, settings, principal, media_id, body.channels, body.justification)
    m = get_media(session, principal, media_id)
    return present.media(session, settings, m, principal.org.policy)


@router.get("/publications")
def list_publications(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                      channel: Channel | None = None,
                      include_withdrawn: bool = False) -> list[schemas.PublicationOut]:
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    pubs = PublicationRepository(session).list_publications(
        principal.org_id, channel=channel.value if channel else None,
        include_withdrawn=include_withdrawn,
    )
    return [present.publication(settings, p) for p in pubs]


# GET /review (the work queue) is in services/api/routes/review.py.


@router.get("/rescreening")
def rescreening(session: SessionDep, principal: CurrentPrincipal) -> schemas.RescreenOut:
    """How far the automatic re-check has got after the register changed: media with
    faces still waiting to be screened again against the register as it is now."""
    principal.require(Role.SLT, Role.ADMIN)
    progress = screening.rescreen_progress(session, principal.org_id)
    return schemas.RescreenOut(stale=progress.stale,
                               screened_with_faces=progress.screened_with_faces)


def _for_publisher(exc: ConsentGateError) -> None:
    """A refusal as the publisher role may see it: reasons without pupil ids or errors."""
    reasons = exc.details.get("reasons")
    if isinstance(reasons, list) and all(isinstance(r, Reason) for r in reasons):
        texts, codes = present.publisher_reasons(reasons)
        exc.details["reasons"], exc.details["reason_codes"] = texts, codes
