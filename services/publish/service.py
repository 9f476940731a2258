"""Publish a medium to a channel through the gate, unpublish it, and take down
publications whose consent has ended.

A public copy is never the original: images are re-encoded from pixels (EXIF
orientation applied, every metadata block dropped) into `published/`. The
public endpoint checks the publication row on every request, so a takedown
is effective the moment it commits, before the object itself is deleted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import after_commit, on_rollback
from models.orm import Channel, Media, MediaKind, Publication, Pupil, Role
from models.repositories.media import MediaRepository, PublicationRepository
from services.audit import SystemActor
from services.audit import record as audit
from services.auth import Principal
from services.config import Settings
from services.decide.service import decide_media, load_facts
from services.errors import Conflict, NotFound
from storage.base import ObjectStore
from workers.engine.imaging import decode_image, encode_clean_jpeg


class Blocked(Conflict):
    code = "blocked"


@dataclass(frozen=True)
class PublishResult:
    publication: Publication
    created: bool


def public_url(settings: Settings, publication: Publication) -> str:
    suffix = publication.public_key.rsplit(".", 1)[-1]
    return f"{settings.public_base_url.rstrip('/')}/public/{publication.id}.{suffix}"


def get_media(session: Session, principal: Principal, media_id: uuid.UUID) -> Media:
    media = MediaRepository(session).get(principal.org_id, media_id)
    if media is None:
        raise NotFound("no such media in your organisation", media_id=str(media_id))
    if principal.role == Role.STAFF and media.uploaded_by != principal.token_id:
        # Staff see only their own uploads; say "not found" rather than leak existence.
        raise NotFound("no such media in your organisation", media_id=str(media_id))
    return media


def publish(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    channel: Channel,
) -> PublishResult:
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    decision = decide_media(session, media, channels=[channel.value])[channel.value]
    if not decision.allowed:
        audit(session, principal, "publication.refused", f"media:{media.id}",
              {"channel": channel.value, "reasons": decision.reasons})
        raise Blocked("this medium may not be published to " + channel.value,
                      reasons=decision.reasons)
    repo = PublicationRepository(session)
    existing = repo.active(media.id, channel.value)
    if existing is not None:
        return PublishResult(existing, created=False)

    publication_id = uuid.uuid4()
    original = store.get(media.original_key)
    if media.kind == MediaKind.IMAGE:
        body = encode_clean_jpeg(decode_image(original, max_pixels=settings.max_image_pixels))
        suffix = "jpg"
    else:
        body = original
        suffix = media.original_key.rsplit(".", 1)[-1]
    key = f"published/{media.org_id}/{publication_id}.{suffix}"
    store.put(key, body, content_type="image/jpeg" if suffix == "jpg" else media.mime)
    on_rollback(session, lambda: store.delete(key))
    publication = repo.add(
        Publication(
            id=publication_id,
            media_id=media.id,
            channel=channel.value,
            public_key=key,
            published_by=principal.actor,
            published_at=utcnow(),
        )
    )
    audit(session, principal, "publication.created", f"media:{media.id}",
          {"channel": channel.value, "publication": str(publication_id)})
    return PublishResult(publication, created=True)


def take_down(
    session: Session,
    store: ObjectStore,
    who: Principal | SystemActor,
    publication: Publication,
    reason: str,
) -> None:
    publication.withdrawn_at = utcnow()
    publication.withdrawn_reason = reason
    session.flush()
    key = publication.public_key
    after_commit(session, lambda: store.delete(key))
    audit(session, who, "publication.withdrawn", f"media:{publication.media_id}",
          {"channel": publication.channel, "publication": str(publication.id), "reason": reason})


def unpublish(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    media_id: uuid.UUID,
    channel: Channel,
) -> Publication:
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    publication = PublicationRepository(session).active(media.id, channel.value)
    if publication is None:
        raise NotFound(f"this medium is not published to {channel.value}")
    take_down(session, store, principal, publication, reason=f"unpublished by {principal.actor}")
    return publication


def redecide_for_pupil(session: Session, store: ObjectStore, pupil: Pupil, *, reason: str) -> int:
    """Re-decide every live publication of a medium this pupil was matched in; take down
    each that the gate no longer allows. Returns how many went."""
    media = MediaRepository(session).media_matching_pupil(pupil.org_id, pupil.id)
    live = PublicationRepository(session).active_for_media([m.id for m in media])
    if not live:
        return 0
    facts = load_facts(session, media)
    by_id = {m.id: m for m in media}
    system = SystemActor("consent-change", pupil.org_id)
    taken = 0
    for publication in live:
        decision = decide_media(
            session, by_id[publication.media_id], facts=facts, channels=[publication.channel]
        )[publication.channel]
        if not decision.allowed:
            take_down(session, store, system, publication, reason=f"{reason}: "
                      + "; ".join(decision.reasons))
            taken += 1
    return taken
