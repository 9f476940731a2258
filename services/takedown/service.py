"""Taking copies down: the one re-decide loop, the takedown itself, and the serve-time
gate that re-decides a public copy on every request.

Every takedown runs under the organisation's gate lock (taken exclusively here if the
caller has not): it marks the row withdrawn, hands it the next takedown-feed cursor,
queues the deletion of the public object through the outbox (retried until it
succeeds), queues the signed webhook, and writes the audit event, all in the caller's
transaction. The public URL checks the row on every request, so a takedown is
effective the moment it commits, before the object itself is deleted.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import Media, Publication
from models.repositories.lifecycle import TakedownRepository
from models.repositories.media import MediaRepository, PublicationRepository
from models.repositories.organisations import OrganisationRepository
from services.core import outbox
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import Gone, NotFound, TransientError
from services.core.uow import lock_for_change
from services.gate import reasons as rc
from services.gate.decide import (
    ChannelDecision,
    decide_publication,
    load_facts,
    organisation_policy,
)
from services.takedown import webhooks

log = logging.getLogger(__name__)

# Reasons that only mean "being looked at again right now": a live copy whose decision
# fails for these alone is held (not served, 503) rather than taken down, and is decided
# again when its re-screen saves. Anything else ends the publication.
HOLD_ONLY = frozenset({rc.STALE, rc.SCREENING_PENDING})


def public_url(settings: Settings, publication: Publication) -> str:
    suffix = publication.public_key.rsplit(".", 1)[-1]
    return f"{settings.public_base_url.rstrip('/')}/public/{publication.id}.{suffix}"


def take_down(
    session: Session,
    settings: Settings,
    who: Principal | SystemActor,
    publication: Publication,
    org_id: uuid.UUID,
    reason: str,
) -> None:
    lock_for_change(session, org_id)
    if publication.withdrawn_at is not None:
        return
    publication.withdrawn_at = utcnow()
    publication.withdrawn_reason = reason
    publication.takedown_seq = OrganisationRepository(session).next_takedown_seq(org_id)
    session.flush()
    outbox.delete_object(session, publication.public_key, org_id=org_id)
    audit(session, who, "publication.withdrawn", f"media:{publication.media_id}",
          {"channel": publication.channel, "publication": str(publication.id),
           "reason": reason})
    webhooks.announce_takedown(session, publication, url=public_url(settings, publication))


def why(trigger: str, decision: ChannelDecision) -> str:
    """Stored with the takedown and sent in the webhook: the trigger and the gate's codes."""
    return f"{trigger}: " + ", ".join(dict.fromkeys(decision.codes))


def redecide(
    session: Session,
    settings: Settings,
    who: Principal | SystemActor,
    org_id: uuid.UUID,
    media: Sequence[Media],
    *,
    trigger: str,
    today: date | None = None,
) -> int:
    """The one re-decide loop. Under the gate lock, decide every live publication of
    these media again and take down each that the gate no longer allows. Returns how
    many went."""
    lock_for_change(session, org_id)
    ids = [m.id for m in media]
    fresh = TakedownRepository(session).media_with_faces(ids)
    live = PublicationRepository(session).active_for_media(ids)
    if not live:
        return 0
    facts = load_facts(session, fresh)
    by_id = {m.id: m for m in fresh}
    taken = 0
    for publication in live:
        decision = decide_publication(session, by_id[publication.media_id], publication,
                                      facts=facts, today=today)
        if decision.allowed or set(decision.codes) <= HOLD_ONLY:
            continue
        take_down(session, settings, who, publication, org_id, why(trigger, decision))
        taken += 1
    return taken


def redecide_for_pupil(session: Session, settings: Settings, who: Principal | SystemActor,
                       org_id: uuid.UUID, pupil_id: uuid.UUID, *, trigger: str) -> int:
    """Every live copy of a medium this pupil is matched in or a candidate for."""
    lock_for_change(session, org_id)
    media = MediaRepository(session).media_matching_pupil(org_id, pupil_id)
    return redecide(session, settings, who, org_id, media, trigger=trigger)


def take_down_all(session: Session, settings: Settings, who: Principal | SystemActor,
                  media: Media, reason: str) -> int:
    """Every live copy of one medium (reject, purge, unpublish of every channel)."""
    lock_for_change(session, media.org_id)
    live = PublicationRepository(session).active_for_media([media.id])
    for publication in live:
        take_down(session, settings, who, publication, media.org_id, reason)
    return len(live)


def recheck_organisation(session: Session, settings: Settings, org_id: uuid.UUID, *,
                         today: date | None = None) -> int:
    repo = TakedownRepository(session)
    lock_for_change(session, org_id)
    media = repo.media_with_faces(repo.live_media_ids(org_id))
    return redecide(session, settings, SystemActor("consent-recheck", org_id), org_id,
                    media, trigger="periodic consent check", today=today)


def recheck_all(sessions: sessionmaker[Session], settings: Settings, *,
                today: date | None = None) -> int:
    """The sweeper that tells the pipeline about what the serve-time gate already blocks
    (expiry above all). One transaction per organisation, so one school's failure does
    not hold up another's takedowns."""
    with transaction(sessions, write=False) as session:
        org_ids = [o.id for o in TakedownRepository(session).orgs_with_live_publications()]
    taken = 0
    for org_id in org_ids:
        try:
            with transaction(sessions) as session:
                taken += recheck_organisation(session, settings, org_id, today=today)
        except Exception:
            log.exception("consent re-check failed for organisation %s", org_id)
    if taken:
        log.warning("periodic consent check took down %d publication(s)", taken)
    return taken


# --- the serve-time gate ---------------------------------------------------------------


class Held(TransientError):
    """A live copy being checked again against a changed register: not served for now."""

    code = "being_rechecked"


@dataclass(frozen=True, slots=True)
class Servable:
    key: str
    suffix: str


@dataclass(frozen=True, slots=True)
class _Verdict:
    allowed: bool
    hold: bool


class DecisionCache:
    """Decisions per (publication, consent epoch, local date). Every change that can end
    a decision bumps the epoch in its own transaction, and expiry turns on the date, so
    a cached verdict is never older than the register it was made from."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[tuple[uuid.UUID, int, date], _Verdict] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple[uuid.UUID, int, date]) -> _Verdict | None:
        with self._lock:
            verdict = self._items.get(key)
            if verdict is not None:
                self._items.move_to_end(key)
            return verdict

    def put(self, key: tuple[uuid.UUID, int, date], verdict: _Verdict) -> None:
        with self._lock:
            self._items[key] = verdict
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


decisions = DecisionCache()


def servable(sessions: sessionmaker[Session], settings: Settings, publication_id: uuid.UUID,
             suffix: str) -> Servable:
    """What the public URL may send now. Raises NotFound, Gone (taken down, now or
    before) or Held (being re-checked)."""
    with transaction(sessions, write=False) as session:
        publication = PublicationRepository(session).get(publication_id)
        if publication is None or not publication.public_key.endswith("." + suffix):
            raise NotFound("no such published file")
        if publication.withdrawn_at is not None:
            raise Gone("this file has been taken down",
                       withdrawn_at=str(publication.withdrawn_at))
        org_id = TakedownRepository(session).media_org(publication.media_id)
        if org_id is None:
            raise NotFound("no such published file")
        epoch = OrganisationRepository(session).epochs(org_id)[0]
        today = local_today(organisation_policy(session, org_id))
        key = (publication.id, epoch, today)
        verdict = decisions.get(key)
        if verdict is None:
            media = TakedownRepository(session).media_with_faces([publication.media_id])[0]
            decision = decide_publication(session, media, publication, today=today)
            verdict = _Verdict(decision.allowed,
                               hold=not decision.allowed and set(decision.codes) <= HOLD_ONLY)
            decisions.put(key, verdict)
        public_key = publication.public_key
    if verdict.allowed:
        return Servable(public_key, suffix)
    if verdict.hold:
        raise Held("this file is being checked again against the consent register; "
                   "try again shortly")
    # The decision no longer holds: take it down at this moment, deciding again under
    # the lock (the register may have moved on since the look above).
    with transaction(sessions) as session:
        publication_row = PublicationRepository(session).get(publication_id)
        if publication_row is not None:
            media_row = TakedownRepository(session).media_with_faces([publication_row.media_id])
            redecide(session, settings, SystemActor("serve-time-check", org_id), org_id,
                     media_row, trigger="checked when served")
    raise Gone("this file has been taken down")


# --- the feed ---------------------------------------------------------------------------


def feed(session: Session, org_id: uuid.UUID, *, after: int | None, limit: int
         ) -> list[Publication]:
    """Takedowns with a cursor above `after`, in cursor order. Cursors are handed out
    under the gate lock, so they appear in commit order: a poller that asks for what
    follows the last one it saw never misses one."""
    return TakedownRepository(session).after_cursor(org_id, after or 0, limit)
