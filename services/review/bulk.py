"""One decision for many media at once (a whole event, or the ones SLT ticked): approve,
approve blurred copies, or reject, each with one justification. A plan is shown first
(what each medium is and which channels the decision covers); each medium is then decided
through the one decision path (services.review.decisions), so every refusal that applies
to one medium applies here too."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Channel, DecisionKind, Media, MediaKind
from services.core.auth import Principal
from services.core.errors import InvalidInput
from services.review.queue import QueueEntry, entries, retention_warning

ACTIONS = {
    "approve": DecisionKind.APPROVE,
    "redact": DecisionKind.REDACT,
    "reject": DecisionKind.REJECT,
}
MAX_ITEMS = 500


@dataclass(frozen=True)
class PlanItem:
    media: Media
    # The channels the decision covers: those still blocked of the ones it was uploaded
    # for (reject covers the whole medium).
    channels: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class Plan:
    action: str
    kind: DecisionKind
    items: list[PlanItem]
    # Media asked for that are not waiting (already decided, or gone): left alone.
    skipped: int

    def request_channels(self, item: PlanItem) -> tuple[Channel, ...]:
        return tuple(Channel(c) for c in item.channels)


def _kind(action: str) -> DecisionKind:
    if action not in ACTIONS:
        raise InvalidInput("choose approve, blur and approve, or reject")
    return ACTIONS[action]


def plan(session: Session, principal: Principal, action: str, *,
         media_ids: Sequence[uuid.UUID] = (), event: str = "") -> Plan:
    kind = _kind(action)
    if not media_ids and not event:
        raise InvalidInput("tick at least one photo, or choose an event")
    every = entries(session, principal)
    wanted = set(media_ids)
    chosen: list[QueueEntry] = [e for e in every if e.media.id in wanted
                                or (event and e.media.event == event)]
    if len(chosen) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} photos at once; narrow the filter")
    items = []
    for e in chosen:
        if not e.waiting:
            continue
        warnings = []
        late = retention_warning(e.media, utcnow().date())
        if late and kind != DecisionKind.REJECT:
            warnings.append(late)
        if kind == DecisionKind.REDACT and e.media.kind == MediaKind.VIDEO:
            warnings.append("video: a blurred copy is made when it is published")
        items.append(PlanItem(e.media, [] if kind == DecisionKind.REJECT
                              else e.blocked_channels, warnings))
    items.sort(key=lambda i: i.media.created_at)
    return Plan(action, kind, items, skipped=len(chosen) - len(items))
