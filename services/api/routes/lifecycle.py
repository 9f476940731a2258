"""Takedown feed, webhook deliveries, legal holds and subject access."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from models.orm import DeliveryStatus, LegalHold, Role
from models.repositories.lifecycle import TakedownRepository, WebhookRepository
from services.api import lifecycle_schemas as schemas
from services.api import present
from services.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from services.api.forms import text_check
from services.lifecycle import retention, subject_access
from services.takedown import service as takedown
from services.takedown.service import public_url

router = APIRouter(prefix="/api/v1", tags=["consent lifecycle"])


@router.get("/takedowns")
def takedowns(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
              after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
              since: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> list[schemas.TakedownOut]:
    """Takedowns, oldest first: the same ones the webhook announces, for pipelines that
    poll. Page with `after=<cursor>`: pass the `cursor` of the last one you saw, and you
    get every later takedown, none missed (cursors are given in commit order). `since`
    (ISO 8601; UTC if no zone) filters by time instead and is kept for older pipelines."""
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if after is not None or since is None:
        rows = takedown.feed(session, principal.org_id, after=after, limit=limit)
    else:
        rows = TakedownRepository(session).withdrawn_since(principal.org_id, since, limit=limit)
    return [
        schemas.TakedownOut(
            publication_id=p.id, media_id=p.media_id, channel=p.channel,
            url=public_url(settings, p), published_at=p.published_at,
            taken_down_at=p.withdrawn_at or p.published_at, reason=p.withdrawn_reason,
            cursor=p.takedown_seq or 0,
        )
        for p in rows
    ]


@router.get("/webhook-deliveries")
def webhook_deliveries(session: SessionDep, principal: CurrentPrincipal,
                       failed: bool = False) -> list[schemas.WebhookDeliveryOut]:
    """Takedown notices sent to the publishing pipeline, newest first; `failed=true` lists
    only those whose every attempt failed, which someone must follow up by hand."""
    principal.require(Role.SLT, Role.ADMIN)
    rows = WebhookRepository(session).list_deliveries(
        principal.org_id, status=DeliveryStatus.FAILED.value if failed else None
    )
    return [
        schemas.WebhookDeliveryOut(
            id=d.id, event=d.event, publication_id=d.publication_id, status=d.status,
            attempts=d.attempts, created_at=d.created_at, last_attempt_at=d.last_attempt_at,
            next_attempt_at=d.next_attempt_at, delivered_at=d.delivered_at,
            last_error=d.last_error,
            attempt_log=[
                schemas.WebhookAttemptOut(number=a.number, at=a.at, url=a.url,
                                          status_code=a.status_code, error=a.error,
                                          duration_ms=a.duration_ms)
                for a in d.attempt_log
            ],
        )
        for d in rows
    ]


def _hold(h: LegalHold) -> schemas.LegalHoldOut:
    return schemas.LegalHoldOut(
        id=h.id, media_id=h.media_id, reason=h.reason, set_by=h.set_by, set_at=h.set_at,
        released_by=h.released_by, released_at=h.released_at, release_reason=h.release_reason,
    )


@router.post("/media/{media_id}/legal-hold", status_code=status.HTTP_201_CREATED)
def set_legal_hold(media_id: uuid.UUID, body: schemas.LegalHoldIn, session: SessionDep,
                   principal: CurrentPrincipal) -> schemas.LegalHoldOut:
    """Suspend the retention purge of this medium (SLT), with the reason."""
    return _hold(retention.set_hold(session, principal, media_id, body.reason))


@router.delete("/media/{media_id}/legal-hold")
def release_legal_hold(media_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
                       reason: Annotated[str | None, Query(max_length=2000),
                                         text_check(2000, "reason")] = None,
                       ) -> schemas.LegalHoldOut:
    """Release the hold (SLT); the medium is purged at the next run if its retention is over."""
    return _hold(retention.release_hold(session, principal, media_id, reason))


@router.get("/media/{media_id}/legal-hold")
def legal_holds(media_id: uuid.UUID, session: SessionDep,
                principal: CurrentPrincipal) -> schemas.LegalHoldsOut:
    history = retention.holds(session, principal, media_id)
    active = next((h for h in history if h.released_at is None), None)
    return schemas.LegalHoldsOut(active=_hold(active) if active else None,
                                 history=[_hold(h) for h in history])


@router.get("/pupils/{pupil_id}/media")
def pupil_media(pupil_id: uuid.UUID, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> schemas.SubjectAccessOut:
    """Subject access: every medium the pupil was matched in, with all its publications."""
    pupil, items = subject_access.media_of_pupil(session, principal, pupil_id)
    return schemas.SubjectAccessOut(
        pupil_id=pupil.id, external_id=pupil.external_id,
        media=[
            schemas.PupilMediumOut(
                media_id=i.media.id, kind=i.media.kind, status=i.media.status,
                event=i.media.event, purpose=i.media.purpose,
                captured_on=i.media.captured_on, uploaded_at=i.media.created_at,
                retention_until=i.media.retention_until, matched_faces=i.matched_faces,
                publications=[present.publication(settings, p) for p in i.publications],
            )
            for i in items
        ],
    )
