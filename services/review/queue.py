"""The review work queue. Each medium has one state per channel it was uploaded for:

  published  a copy is live there;
  allowed    the gate lets it go there now (nothing for SLT to do);
  decided    SLT have decided for that channel (approved, approved a blurred copy, or
             rejected the medium), whatever the gate still says;
  blocked    none of those: the gate's reasons say why, and SLT must look at it.

A medium is waiting (in the queue) while any of its channels is blocked; once SLT have
decided every channel it was uploaded for, it moves to the decided view. The channels a
medium was uploaded for come from its purpose; a purpose that names no channel counts as
every channel of the policy (fail closed: nothing is left undecided by accident)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Media, MediaStatus, Role
from models.repositories.media import MediaRepository, PublicationRepository
from models.repositories.review import ReviewRepository
from services.core.auth import Principal
from services.core.policy import Policy, policy_of
from services.gate.decide import ChannelDecision, ConsentFacts, decide_media, load_facts
from services.gate.reasons import Reason
from services.review.detail import ReviewView, view_of

PUBLISHED, ALLOWED, DECIDED, BLOCKED = "published", "allowed", "decided", "blocked"
STATES = (PUBLISHED, ALLOWED, DECIDED, BLOCKED)
VIEWS = ("waiting", "decided", "all")
SORTS = ("oldest", "newest", "event", "uploader")
PAGE_SIZE = 24
# How many of the organisation's newest media the queue looks at.
SCAN_LIMIT = 2000

# Words people write in a purpose for each channel ("social media" is `social_media`).
_CHANNEL_WORDS = {
    "website": ("website", "web site", "web"),
    "social_media": ("social media", "social", "facebook", "instagram", "twitter", "x.com"),
    "newsletter": ("newsletter",),
    "press": ("press", "newspaper", "paper"),
    "display": ("display", "displays", "noticeboard", "notice board", "wall"),
}


def target_channels(purpose: str, policy: Policy) -> list[str]:
    """The channels a medium was uploaded for: its purpose's channels in the policy (the
    ones enabled); for a purpose the policy does not list (media uploaded before purposes
    were a list), the channels its words name, or all of them when it names none."""
    enabled = [c.value for c in policy.channels]
    listed = policy.purpose(purpose)
    if listed is not None:
        return [c for c in enabled if c in {ch.value for ch in listed.channels}]
    text = " " + re.sub(r"[_\-/,;.]+", " ", purpose.lower()) + " "
    named = [c for c in enabled
             if any(f" {w} " in text for w in _CHANNEL_WORDS.get(c, (c.replace("_", " "),)))]
    return named or enabled


@dataclass(frozen=True)
class ChannelState:
    channel: str
    state: str
    reasons: list[Reason] = field(default_factory=list)


@dataclass(frozen=True)
class QueueEntry:
    media: Media
    targets: list[str]
    states: list[ChannelState]
    decisions: dict[str, ChannelDecision]

    @property
    def waiting(self) -> bool:
        return any(s.state == BLOCKED for s in self.states)

    @property
    def blocked_channels(self) -> list[str]:
        return [s.channel for s in self.states if s.state == BLOCKED]

    @property
    def reason_codes(self) -> set[str]:
        return {r.code for s in self.states if s.state == BLOCKED for r in s.reasons}


@dataclass(frozen=True)
class QueueFilter:
    view: str = "waiting"
    event: str = ""
    uploader: str = ""
    since: date | None = None
    until: date | None = None
    status: str = ""
    channel: str = ""
    reason: str = ""
    q: str = ""
    sort: str = "oldest"
    page: int = 1


@dataclass(frozen=True)
class QueueItem:
    entry: QueueEntry
    view: ReviewView


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    page: int
    pages: int
    waiting_count: int
    decided_count: int
    events: list[str]
    uploaders: list[str]
    reasons: list[str]
    # Ids of every medium that matches the filter (all pages): what a bulk action on
    # "everything shown" acts on.
    matching: list[uuid.UUID]


def channel_states(media: Media, targets: Sequence[str], decisions: dict[str, ChannelDecision],
                   facts: ConsentFacts, live: set[str], rejected: bool) -> list[ChannelState]:
    approved = facts.approved.get(media.id, set()) | facts.approved_redacted.get(media.id,
                                                                                 set())
    states = []
    for c in targets:
        d = decisions[c]
        if c in live:
            states.append(ChannelState(c, PUBLISHED))
        elif d.allowed:
            states.append(ChannelState(c, ALLOWED))
        elif rejected or c in approved:
            states.append(ChannelState(c, DECIDED, d.reasons))
        else:
            states.append(ChannelState(c, BLOCKED, d.reasons))
    return states


def entries(session: Session, principal: Principal) -> list[QueueEntry]:
    """Every medium of the organisation (newest SCAN_LIMIT) with its channel states.
    Purged media have nothing left to decide and are left out."""
    principal.require(Role.SLT, Role.ADMIN)
    policy = policy_of(principal.org.policy)
    channels = [c.value for c in policy.channels]
    media = [m for m in MediaRepository(session).list_media(principal.org_id,
                                                            limit=SCAN_LIMIT)
             if m.status != MediaStatus.PURGED]
    facts = load_facts(session, media)
    live: dict[uuid.UUID, set[str]] = {}
    for p in PublicationRepository(session).active_for_media([m.id for m in media]):
        live.setdefault(p.media_id, set()).add(p.channel)
    out = []
    for m in media:
        decisions = decide_media(session, m, facts=facts, channels=channels)
        targets = target_channels(m.purpose, policy)
        out.append(QueueEntry(m, targets, channel_states(
            m, targets, decisions, facts, live.get(m.id, set()),
            m.status == MediaStatus.REJECTED), decisions))
    return out


def _matches(e: QueueEntry, f: QueueFilter) -> bool:
    m = e.media
    if f.view == "waiting" and not e.waiting:
        return False
    if f.view == "decided" and e.waiting:
        return False
    if f.event and m.event != f.event:
        return False
    if f.uploader and m.uploader_name != f.uploader:
        return False
    day = m.captured_on or m.created_at.date()
    if f.since and day < f.since:
        return False
    if f.until and day > f.until:
        return False
    if f.status:
        if f.status in STATES:
            if not any(s.state == f.status for s in e.states):
                return False
        elif m.status != f.status and not (
                f.status == MediaStatus.SCREENING and m.status == MediaStatus.QUEUED):
            return False
    if f.channel:
        if f.channel not in e.targets:
            return False
        if f.view == "waiting" and f.channel not in e.blocked_channels:
            return False
    if f.reason and f.reason not in e.reason_codes:
        return False
    if f.q:
        hay = " ".join([m.event, m.purpose, m.uploader_name, m.file_name or ""]).lower()
        if not all(word in hay for word in f.q.lower().split()):
            return False
    return True


# Failed and flagged media first within "oldest": they are the ones a person must see.
_URGENT = {MediaStatus.FAILED: 0, MediaStatus.NEEDS_REVIEW: 1}


def _sort(found: list[QueueEntry], how: str) -> list[QueueEntry]:
    if how == "newest":
        return sorted(found, key=lambda e: e.media.created_at, reverse=True)
    if how == "event":
        return sorted(found, key=lambda e: (e.media.event.lower(), e.media.created_at))
    if how == "uploader":
        return sorted(found, key=lambda e: (e.media.uploader_name.lower(), e.media.created_at))
    return sorted(found, key=lambda e: (_URGENT.get(MediaStatus(e.media.status), 9),
                                        e.media.created_at))


def queue_page(session: Session, principal: Principal, f: QueueFilter) -> QueuePage:
    policy = policy_of(principal.org.policy)
    every = entries(session, principal)
    found = _sort([e for e in every if _matches(e, f)], f.sort)
    pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    page = min(max(1, f.page), pages)
    shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    facts = load_facts(session, [e.media for e in shown])
    decided = ReviewRepository(session).decided([e.media.id for e in shown])
    today = utcnow().date()
    items = [QueueItem(e, view_of(session, e.media, policy, facts, e.decisions, today,
                                history=False, decided=e.media.id in decided))
             for e in shown]
    return QueuePage(
        items=items, total=len(found), page=page, pages=pages,
        waiting_count=sum(1 for e in every if e.waiting),
        decided_count=sum(1 for e in every if not e.waiting),
        events=sorted({e.media.event for e in every}, key=str.lower),
        uploaders=sorted({e.media.uploader_name for e in every}, key=str.lower),
        reasons=sorted({c for e in every for c in e.reason_codes}),
        matching=[e.media.id for e in found],
    )


def matching_entries(session: Session, principal: Principal,
                     f: QueueFilter) -> tuple[list[QueueEntry], list[QueueEntry]]:
    """(every entry, those the filter matches in its sort order): for callers that page
    the result themselves (the API's limit and offset); `f.page` is ignored."""
    every = entries(session, principal)
    return every, _sort([e for e in every if _matches(e, f)], f.sort)


def entries_for(session: Session, principal: Principal,
                media_ids: Sequence[uuid.UUID]) -> list[QueueEntry]:
    wanted = set(media_ids)
    return [e for e in entries(session, principal) if e.media.id in wanted]


# Within this many days of its retention end a photo is warned about at upload and review.
RETENTION_WARN_DAYS = 30


def retention_warning(media: Media, today: date) -> str | None:
    """A warning for a medium whose retention ends soon or has already ended (the purge
    deletes it, published or not)."""
    end = media.retention_until
    if end is None:
        return None
    if end < today:
        return (f"Its retention period ended on {end:%-d %b %Y}, so it will be deleted at "
                "the next clean-up, even if it is published.")
    if (end - today).days <= RETENTION_WARN_DAYS:
        return (f"Its retention period ends on {end:%-d %b %Y}; it will be deleted then, "
                "even if it is published.")
    return None
