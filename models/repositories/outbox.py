from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.orm import OutboxItem, OutboxStatus


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, item: OutboxItem) -> OutboxItem:
        self.session.add(item)
        self.session.flush()
        return item

    def pending(self, ids: Sequence[int]) -> list[OutboxItem]:
        if not ids:
            return []
        return list(self.session.scalars(
            select(OutboxItem).where(OutboxItem.id.in_(ids),
                                     OutboxItem.status == OutboxStatus.PENDING)
        ))

    def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        return list(self.session.scalars(
            select(OutboxItem)
            .where(OutboxItem.status == OutboxStatus.PENDING, OutboxItem.next_attempt_at <= now)
            .order_by(OutboxItem.id).limit(limit)
        ))

    def lock(self, item_id: int) -> OutboxItem | None:
        return self.session.scalar(
            select(OutboxItem).where(OutboxItem.id == item_id).with_for_update()
            .execution_options(populate_existing=True)
        )

    def list_pending(self, org_id: object | None = None) -> list[OutboxItem]:
        query = select(OutboxItem).where(OutboxItem.status == OutboxStatus.PENDING)
        if org_id is not None:
            query = query.where(OutboxItem.org_id == org_id)
        return list(self.session.scalars(query.order_by(OutboxItem.id)))
