"""Publish a medium to a channel through the gate, and unpublish it.

Publishing runs in two transactions so that no lock is held while the copy is made:

1. A read: the medium and the facts, and a first decision. A refusal here costs no
   encoding. Then the public copy is made (re-encoded from pixels: images after EXIF
   orientation with every metadata block dropped, videos frame by frame in `clean.py`;
   a redacted copy has faces blurred and is screened again, `redact.py`) and stored
   under `published/`, with no lock held.
2. A write unit under the gate lock (shared, so changes wait for it and it for them,
   services.core.uow) and the medium's row lock: the facts are read again and the
   decision made again immediately before the publication row is inserted. If anything
   changed that blocks it now, nothing is inserted and the stored copy is deleted.

At most one live copy exists per (medium, channel) (a partial unique index); a repeat
POST returns it, and an `Idempotency-Key` returns what the first request with that key
made. Refusals are audited in their own transaction, since the refusing one rolls back.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import Channel, Face, Media, MediaKind, Publication, Role
from models.repositories.media import MediaRepository, PublicationRepository
from services.core import intents
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import Conflict, NotFound
from services.core.uow import lock_for_change, lock_for_publish
from services.gate import reasons as rc
from services.gate.decide import ConsentFacts, decide_media, load_facts, organisation_policy
from services.gate.media import get_media, refuse_if_purged
from services.gate.reasons import Reason
from services.publish import redact as redaction
from services.publish.clean import VIDEO_SUFFIX, VIDEO_TYPE, clean_video_copy
from services.takedown import service as takedown
from storage.base import ObjectStore
from workers.engine.imaging import decode_image, encode_clean_jpeg


class Blocked(Conflict):
    code = "blocked"

    def __init__(self, message: str, reasons: list[Reason]) -> None:
        super().__init__(message, reasons=reasons)
        self.reasons = reasons


@dataclass(frozen=True)
class PublishResult:
    publication: Publication
    created: bool


@dataclass(frozen=True)
class _Copy:
    key: str
    blurred: list[str] | None


def _first_look(session: Session, principal: Principal, media_id: uuid.UUID,
                channel: str, redact: bool, idempotency_key: str | None
                ) -> tuple[Media, ConsentFacts, list[Face] | None, Publication | None]:
    media = get_media(session, principal, media_id)
    repo = PublicationRepository(session)
    if idempotency_key is not None:
        earlier = repo.by_idempotency_key(media.id, idempotency_key)
        if earlier is not None:
            if earlier.channel != channel or (earlier.blurred_faces is not None) != redact:
                raise Conflict("this Idempotency-Key was used for a different request",
                               error_code="idempotency_key_reused")
            return media, ConsentFacts(), None, earlier
    existing = repo.active(media.id, channel)
    if existing is not None:
        return media, ConsentFacts(), None, existing
    facts = load_facts(session, [media])
    today = local_today(organisation_policy(session, media.org_id))
    blur = redaction.faces_to_blur(media, facts, channel, today) if redact else None
    _decide(session, media, facts, channel, blur)
    return media, facts, blur, None


def _decide(session: Session, media: Media, facts: ConsentFacts, channel: str,
            blur: list[Face] | None) -> None:
    today = local_today(organisation_policy(session, media.org_id))
    decision = decide_media(session, media, facts=facts, channels=[channel], today=today,
                            blurred=None if blur is None else {f.id for f in blur})[channel]
    reasons = list(decision.reasons)
    if decision.allowed and blur is not None and not _slt_approved(facts, media, channel):
        reasons.append(Reason(rc.REDACTION_NEEDS_APPROVAL, {"channel": channel}))
    if reasons:
        raise Blocked(f"this medium may not be published to {channel}", reasons)


def publish(
    sessions: sessionmaker[Session],
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    channel: Channel,
    *,
    redact: bool = False,
    idempotency_key: str | None = None,
) -> PublishResult:
    """`session` is the caller's read-only session (the request's); the publication row
    is written in a write unit of its own. `redact` publishes a copy with every face not
    allowed for the channel blurred (in every frame, for a video); it needs SLT approval
    for the channel whatever the policy says."""
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    try:
        media, facts, blur, earlier = _first_look(session, principal, media_id, channel.value,
                                                  redact, idempotency_key)
    except Blocked as exc:
        _audit_refusal(sessions, principal, media_id, channel.value, exc.reasons, redact)
        raise
    if earlier is not None:
        return PublishResult(earlier, created=False)
    org_id = media.org_id
    copy = _make_copy(session, store, settings, media, facts, channel.value, blur)
    session.rollback()  # end the read before the write unit begins (SQLite: one writer)
    try:
        return _commit(sessions, store, settings, principal, org_id, media_id, channel.value,
                       copy, blur, idempotency_key)
    except Blocked as exc:
        store.delete(copy.key)
        _audit_refusal(sessions, principal, media_id, channel.value, exc.reasons, redact)
        raise
    except BaseException:
        store.delete(copy.key)
        raise


def _make_copy(session: Session, store: ObjectStore, settings: Settings, media: Media,
               facts: ConsentFacts, channel: str, blur: list[Face] | None) -> _Copy:
    publication_id = uuid.uuid4()
    blurred: list[str] | None = None
    if blur is not None and media.kind == MediaKind.VIDEO:
        today = local_today(organisation_policy(session, media.org_id))
        with tempfile.TemporaryDirectory(prefix="cg-redact-") as tmp:
            source = Path(tmp) / "original"
            store.download(media.original_key, source)
            video = redaction.make_redacted_video(session, settings, media, source, facts,
                                                  channel, today, blur)
        if video.problems:
            raise Blocked("the blurred copy failed its check, so it was not published",
                          video.problems)
        body, suffix, content_type = video.webm, VIDEO_SUFFIX, VIDEO_TYPE
        blurred = [str(f.id) for f in video.blurred]
    elif blur is not None:
        today = local_today(organisation_policy(session, media.org_id))
        made = redaction.make_redacted_copy(session, settings, media,
                                            store.get(media.original_key), facts,
                                            channel, today, blur)
        if made.problems:
            raise Blocked("the blurred copy failed its check, so it was not published",
                          made.problems)
        body, suffix, content_type = made.jpeg, "jpg", "image/jpeg"
        blurred = [str(f.id) for f in made.blurred]
    elif media.kind == MediaKind.IMAGE:
        original = store.get(media.original_key)
        body = encode_clean_jpeg(decode_image(original, max_pixels=settings.max_image_pixels))
        suffix, content_type = "jpg", "image/jpeg"
    else:
        body = clean_video_copy(store, media.original_key, expected_frames=media.frames_screened)
        suffix, content_type = VIDEO_SUFFIX, VIDEO_TYPE
    key = f"published/{media.org_id}/{publication_id}.{suffix}"
    # Committed before the write; _commit links it. A copy whose publish is refused or
    # crashes is deleted at once, or by the intent sweep (services/core/intents.py).
    intents.record(key, session=session)
    store.put(key, body, content_type=content_type)
    return _Copy(key=key, blurred=blurred)


def _commit(sessions: sessionmaker[Session], store: ObjectStore, settings: Settings,
            principal: Principal, org_id: uuid.UUID, media_id: uuid.UUID, channel: str,
            copy: _Copy, blur: list[Face] | None, idempotency_key: str | None
            ) -> PublishResult:
    with transaction(sessions) as session:
        lock_for_publish(session, org_id)
        media = MediaRepository(session).lock(org_id, media_id)
        if media is None:
            raise NotFound("no such media in your organisation", media_id=str(media_id))
        refuse_if_purged(session, media)
        repo = PublicationRepository(session)
        existing = repo.active(media.id, channel)
        if existing is not None:
            # Another request published it while this one made its copy.
            store.delete(copy.key)
            return PublishResult(existing, created=False)
        facts = load_facts(session, [media])
        blur_now: list[Face] | None = None
        if blur is not None:
            today = local_today(organisation_policy(session, org_id))
            blur_now = redaction.faces_to_blur(media, facts, channel, today)
            if {f.id for f in blur_now} != {f.id for f in blur}:
                raise Blocked("the register changed while the blurred copy was made",
                              [Reason(rc.CHANGED_WHILE_PUBLISHING)])
        _decide(session, media, facts, channel, blur_now)
        publication = Publication(
            id=uuid.UUID(copy.key.rsplit("/", 1)[-1].split(".", 1)[0]),
            media_id=media.id, channel=channel, public_key=copy.key,
            published_by=principal.actor, published_at=utcnow(),
            blurred_faces=copy.blurred, idempotency_key=idempotency_key,
        )
        intents.link(session, copy.key)
        try:
            with session.begin_nested():
                repo.add(publication)
        except IntegrityError as exc:
            # The unique index: a concurrent publish got there first (the row lock makes
            # this rare on PostgreSQL; it cannot happen on SQLite's single writer).
            raise Conflict("this medium was published to this channel at the same moment; "
                           "try again to get the live copy") from exc
        audit(session, principal, "publication.created", f"media:{media.id}",
              {"channel": channel, "publication": str(publication.id),
               "faces_blurred": None if copy.blurred is None else len(copy.blurred)})
        return PublishResult(publication, created=True)


def _slt_approved(facts: ConsentFacts, media: Media, channel: str) -> bool:
    return channel in facts.approved.get(media.id, set()) or channel in (
        facts.approved_redacted.get(media.id, set())
    )


def _audit_refusal(sessions: sessionmaker[Session], principal: Principal,
                   media_id: uuid.UUID, channel: str, reasons: list[Reason],
                   redact: bool) -> None:
    """A refusal is worth a line in the trail although the request's own work is undone."""
    with transaction(sessions) as session:
        audit(session, principal, "publication.refused", f"media:{media_id}",
              {"channel": channel, "redacted": redact,
               "reasons": [r.as_json() for r in reasons]})


def unpublish(
    session: Session,
    settings: Settings,
    principal: Principal,
    media_id: uuid.UUID,
    channel: Channel,
) -> list[Publication]:
    """Take down every live copy of the medium on the channel."""
    principal.require(Role.PUBLISHER, Role.SLT, Role.ADMIN)
    media = get_media(session, principal, media_id)
    lock_for_change(session, media.org_id)
    live = PublicationRepository(session).active_all(media.id, channel.value)
    if not live:
        raise NotFound(f"this medium is not published to {channel.value}")
    for publication in live:
        takedown.take_down(session, settings, principal, publication, media.org_id,
                           reason=f"unpublished by {principal.actor}")
    return live
