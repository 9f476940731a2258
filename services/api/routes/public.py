"""Published copies, for the website to fetch. No auth. Every request re-decides the copy
(services/takedown: cheaply, cached per consent epoch and local date): a copy whose
decision no longer holds answers 410 and is taken down at that moment; one being
checked again against a changed register answers 503 until the check is done."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.api.deps import SessionsDep, SettingsDep, StoreDep
from services.core.errors import NotFound
from services.takedown import service as takedown

router = APIRouter(tags=["public"])

_TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4", "mov": "video/quicktime",
          "webm": "video/webm"}


@router.get("/public/{name}")
def published_copy(name: str, sessions: SessionsDep, settings: SettingsDep,
                   store: StoreDep) -> Response:
    stem, _, suffix = name.partition(".")
    try:
        publication_id = uuid.UUID(stem)
    except ValueError as exc:
        raise NotFound("no such published file") from exc
    copy = takedown.servable(sessions, settings, publication_id, suffix)
    return Response(
        store.get(copy.key),
        media_type=_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-store"},
    )
