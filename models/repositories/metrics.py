"""Read-only counts for the Prometheus metrics (services.core.metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.orm import AuditEvent, Media, OutboxItem, OutboxStatus, WebhookDelivery


class MetricsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def media_by_status(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Media.status, func.count()).group_by(Media.status)
        ).all()
        return {str(status): int(n) for status, n in rows}

    def outbox_pending(self) -> int:
        return int(self.session.scalar(
            select(func.count()).select_from(OutboxItem)
            .where(OutboxItem.status == OutboxStatus.PENDING)
        ) or 0)

    def webhook_deliveries_by_status(self) -> dict[str, int]:
        rows = self.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
        return {str(status): int(n) for status, n in rows}

    def audit_after(self, last_id: int, actions: Sequence[str], limit: int
                    ) -> list[tuple[int, str, dict[str, Any]]]:
        """(id, action, details) of events newer than last_id, oldest first. Appends hold
        the audit head's lock until commit, so ids become visible in order."""
        rows = self.session.execute(
            select(AuditEvent.id, AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.id > last_id, AuditEvent.action.in_(list(actions)))
            .order_by(AuditEvent.id).limit(limit)
        ).all()
        return [(int(i), str(a), dict(d or {})) for i, a, d in rows]

    def last_audit_id(self) -> int:
        return int(self.session.scalar(select(func.max(AuditEvent.id))) or 0)
