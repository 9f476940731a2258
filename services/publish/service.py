"""Publish a medium to a channel through the gate, unpublish it, and take down
publications whose consent has ended.

A public copy is never the original: images are re-encoded from pixels (EXIF
orientation applied, every metadata block dropped) and videos re-encoded frame by
frame (`clean.py`) into `published/`; a redacted copy has faces blurred first
(`services/redact`). The public endpoint checks the publication row on every
request, so a takedown is effective the moment it commits, before the object
itself is deleted.
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
from services.config import Settings, get_settings
from services.decide.service import (
    ChannelDecision,
    ConsentFacts,
    decide_media,
    decide_publication,
    load_facts,
)
from services.errors import Conflict, NotFound
from services.lifecycle import webhooks
from services.lifecycle.tombstones import refuse_if_purged
from services.publish.clean import VIDEO_SUFFIX, VIDEO_TYPE, clean_video_copy
from services.redact import service as redaction
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
    refuse_if_purged(session, media)
    return media


def publish(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    channel: Channel,
    *,
    redact: bool = False,
) -> PublishResult:
    """`redact` publishes a copy with every face not allowed for the channel blurred
    (images only); it needs SLT approval for the channel whatever the policy says."""
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    facts = load_facts(session, [media])
    today = utcnow().date()
    blur = redaction.faces_to_blur(media, facts, channel.value, today) if redact else None
    decision = decide_media(
        session, media, facts=facts, channels=[channel.value], today=today,
        blurred=None if blur is None else {f.id for f in blur},
    )[channel.value]
    if decision.allowed and redact and not _slt_approved(facts, media, channel.value):
        decision = ChannelDecision(False, [
            f"a blurred copy needs SLT approval for {channel.value}, and it has not been given"
        ])
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
    blurred_faces: list[str] | None = None
    if blur is not None:
        copy = redaction.make_redacted_copy(session, settings, media,
                                            store.get(media.original_key), facts,
                                            channel.value, today, blur)
        if copy.problems:
            audit(session, principal, "publication.refused", f"media:{media.id}",
                  {"channel": channel.value, "redacted": True, "reasons": copy.problems})
            raise Blocked("the blurred copy failed its check, so it was not published",
                          reasons=copy.problems)
        body, suffix, content_type = copy.jpeg, "jpg", "image/jpeg"
        blurred_faces = [str(f.id) for f in copy.blurred]
    elif media.kind == MediaKind.IMAGE:
        original = store.get(media.original_key)
        body = encode_clean_jpeg(decode_image(original, max_pixels=settings.max_image_pixels))
        suffix, content_type = "jpg", "image/jpeg"
    else:
        body = clean_video_copy(store, media.original_key)
        suffix, content_type = VIDEO_SUFFIX, VIDEO_TYPE
    key = f"published/{media.org_id}/{publication_id}.{suffix}"
    store.put(key, body, content_type=content_type)
    on_rollback(session, lambda: store.delete(key))
    publication = repo.add(
        Publication(
            id=publication_id,
            media_id=media.id,
            channel=channel.value,
            public_key=key,
            published_by=principal.actor,
            published_at=utcnow(),
            blurred_faces=blurred_faces,
        )
    )
    audit(session, principal, "publication.created", f"media:{media.id}",
          {"channel": channel.value, "publication": str(publication_id),
           "faces_blurred": None if blurred_faces is None else len(blurred_faces)})
    return PublishResult(publication, created=True)


def _slt_approved(facts: ConsentFacts, media: Media, channel: str) -> bool:
    return channel in facts.approved.get(media.id, set()) or channel in (
        facts.approved_redacted.get(media.id, set())
    )


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
    # The pipeline is told by a signed webhook (if configured) and by GET /api/v1/takedowns.
    webhooks.announce_takedown(session, publication, url=public_url(get_settings(), publication))


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
        decision = decide_publication(session, by_id[publication.media_id], publication,
                                      facts=facts)
        if not decision.allowed:
            take_down(session, store, system, publication, reason=f"{reason}: "
                      + "; ".join(decision.reasons))
            taken += 1
    return taken
