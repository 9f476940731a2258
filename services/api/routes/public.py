"""Published copies, for the website to fetch. No auth: only live publications are served,
and the publication row is checked on every request so a takedown takes effect at once."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from models.repositories.media import PublicationRepository
from services.api.deps import SessionDep, StoreDep
from services.errors import Gone, NotFound

router = APIRouter(tags=["public"])

_TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4", "mov": "video/quicktime",
          "webm": "video/webm"}


@router.get("/public/{name}")
def published_copy(name: str, session: SessionDep, store: StoreDep) -> Response:
    stem, _, suffix = name.partition(".")
    try:
        publication_id = uuid.UUID(stem)
    except ValueError as exc:
        raise NotFound("no such published file") from exc
    publication = PublicationRepository(session).get(publication_id)
    if publication is None or not publication.public_key.endswith("." + suffix):
        raise NotFound("no such published file")
    if publication.withdrawn_at is not None:
        raise Gone("this file has been taken down", withdrawn_at=str(publication.withdrawn_at))
    return Response(
        store.get(publication.public_key),
        media_type=_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-store"},
    )
