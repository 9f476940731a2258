"""Turn domain objects into API v1 bodies."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.orm import Media, Publication
from models.repositories.media import PublicationRepository
from services.api import schemas
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import scrub
from services.core.policy import policy_of
from services.gate.decide import (
    ChannelDecision,
    ConsentFacts,
    decide_media,
    face_status,
    load_facts,
)
from services.gate.reasons import Reason
from services.takedown.service import public_url
from services.words import reason_texts, screening_failure


def failure_words(m: Media) -> str | None:
    """Why screening failed, in words (from the failure code when there is one)."""
    if m.failure_code is None:
        return m.error
    return screening_failure({"failure": m.failure_code, **(m.failure_data or {}),
                              "error": m.error})


def _shown_error(m: Media) -> str | None:
    words = failure_words(m)
    return scrub(words, limit=2000) if words else None


def decision(d: ChannelDecision) -> schemas.ChannelDecisionOut:
    return schemas.ChannelDecisionOut(
        allowed=d.allowed, reasons=reason_texts(d.reasons),
        reason_codes=[schemas.ReasonOut(**r.as_json()) for r in d.reasons])


def publication(settings: Settings, p: Publication) -> schemas.PublicationOut:
    return schemas.PublicationOut(
        id=p.id, media_id=p.media_id, channel=p.channel, url=public_url(settings, p),
        published_at=p.published_at, published_by=p.published_by,
        withdrawn_at=p.withdrawn_at, withdrawn_reason=p.withdrawn_reason,
        redacted=p.blurred_faces is not None,
    )


def media(
    session: Session,
    settings: Settings,
    m: Media,
    policy_doc: dict[str, object],
    *,
    facts: ConsentFacts | None = None,
    decisions: dict[str, ChannelDecision] | None = None,
) -> schemas.MediaOut:
    facts = facts if facts is not None else load_facts(session, [m])
    decisions = decisions if decisions is not None else decide_media(session, m, facts=facts)
    policy = policy_of(dict(policy_doc))
    today = local_today(policy)
    pubs = PublicationRepository(session).active_for_media([m.id])
    return schemas.MediaOut(
        id=m.id, kind=m.kind, status=m.status, event=m.event, purpose=m.purpose,
        device=m.device, captured_on=m.captured_on, uploaded_at=m.created_at,
        # Scrubbed again for rows written before media.error was kept in plain words.
        uploader=m.uploader_name, error=_shown_error(m),
        faces=[
            schemas.FaceOut(
                box=(f.top, f.right, f.bottom, f.left), frame=f.frame, pupil_id=f.pupil_id,
                distance=f.distance, status=face_status(f, facts, policy, today),
                candidates=[schemas.CandidateOut(pupil_id=uuid.UUID(str(c["pupil_id"])),
                                                 distance=float(c["distance"]))
                            for c in f.candidates or []],
                track=f.track,
            )
            for f in m.faces
        ],
        channels={
            c: decision(d) for c, d in decisions.items()
        },
        retention_until=m.retention_until,
        publications=[publication(settings, p) for p in pubs],
        session_id=m.session_id,
    )


# Reason data the publisher role may see: nothing that names a pupil, a distance or
# an error message (those are for SLT, who review it).
_PUBLISHER_DATA = frozenset(("channel", "count", "video", "frames", "claimed",
                             "permission_from"))


def publisher_reason(reason: Reason) -> Reason:
    """The reason with only the data the publisher role may see."""
    data = {k: v for k, v in reason.data.items() if k in _PUBLISHER_DATA}
    if "error" in reason.data:
        data["error"] = "SLT can see the details"
    return Reason(reason.code, data)


def publisher_reasons(reasons: list[Reason]) -> tuple[list[str], list[dict[str, object]]]:
    """Words and codes of `reasons` for the publisher role: every pupil is "a pupil"."""
    kept = [publisher_reason(r) for r in reasons]
    # The words need a pupil_id to say "a pupil"; names={} never shows it.
    worded = [Reason(k.code, {**k.data, "pupil_id": ""} if "pupil_id" in r.data else k.data)
              for k, r in zip(kept, reasons, strict=True)]
    return reason_texts(worded, names={}), [k.as_json() for k in kept]


def publisher_decision(d: ChannelDecision) -> schemas.ChannelDecisionOut:
    texts, codes = publisher_reasons(d.reasons)
    return schemas.ChannelDecisionOut(allowed=d.allowed, reasons=texts,
                                      reason_codes=[schemas.ReasonOut(**c) for c in codes])


def publisher_media(session: Session, settings: Settings, m: Media) -> schemas.PublisherMediaOut:
    decisions = decide_media(session, m, facts=load_facts(session, [m]))
    pubs = PublicationRepository(session).active_for_media([m.id])
    return schemas.PublisherMediaOut(
        id=m.id, kind=m.kind, status=m.status,
        channels={c: publisher_decision(d) for c, d in decisions.items()},
        publications=[publication(settings, p) for p in pubs],
    )
