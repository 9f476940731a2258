"""Signed webhooks that tell an organisation's publishing pipeline about takedowns.

Every takedown writes a delivery row in the same transaction, and the delivery
task is queued after commit. Each attempt POSTs the same body with two headers:

    X-ConsentGate-Timestamp: <unix seconds>
    X-ConsentGate-Signature: sha256=<hex HMAC-SHA256 of f"{timestamp}.{body}">

keyed with the organisation's secret. Receivers should recompute it with a
constant-time comparison, refuse timestamps more than a few minutes old, and
treat `X-ConsentGate-Delivery` as an idempotency key (delivery is at least once).
Failures are retried with exponential backoff; every attempt is recorded, and
a delivery that runs out of attempts stays listed as failed for SLT.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import (
    DeliveryStatus,
    Organisation,
    Publication,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.repositories.lifecycle import TakedownRepository, WebhookRepository
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.config import Settings
from services.core.errors import InvalidInput
from services.core.jobs import enqueue

log = logging.getLogger(__name__)

TAKEDOWN_EVENT = "publication.taken_down"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker that makes leaked secrets greppable
DELIVER_TASK = "consentgate.deliver_webhook"
# Longest wait between attempts, in seconds.
MAX_BACKOFF_S = 3600.0
# A message may arrive this many seconds before its delivery is due (clock skew
# between hosts) and still be attempted.
EARLY_SLACK_S = 1.0
# Stored error text is cut to this many characters.
ERROR_CHARS = 500


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp + "." + body`, as sent in X-ConsentGate-Signature."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the webhook URL must be an absolute http:// or https:// URL")
    return url.strip()


def configure_endpoint(
    session: Session, settings: Settings, org: Organisation, url: str
) -> str:
    """Set the organisation's webhook URL with a fresh secret; return the secret (shown once)."""
    url = _check_url(url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    repo = WebhookRepository(session)
    existing = repo.endpoint(org.id)
    repo.set_endpoint(
        WebhookEndpoint(
            org_id=org.id,
            url=url,
            secret_ciphertext=settings.secrets_fernet().encrypt(secret.encode()),
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
    )
    audit(session, SystemActor("cli", org.id), "webhook.configured", f"org:{org.id}",
          {"url": url, "secret_rotated": True})
    return secret


def remove_endpoint(session: Session, org: Organisation) -> bool:
    removed = WebhookRepository(session).remove_endpoint(org.id)
    if removed:
        audit(session, SystemActor("cli", org.id), "webhook.removed", f"org:{org.id}", {})
    return removed


def announce_takedown(session: Session, publication: Publication, *, url: str) -> None:
    """Queue a signed notice of this takedown, if the organisation has a webhook.

    Without one, the pipeline learns of it from GET /api/v1/takedowns."""
    org_id = TakedownRepository(session).media_org(publication.media_id)
    if org_id is None or WebhookRepository(session).endpoint(org_id) is None:
        return
    delivery_id = uuid.uuid4()
    taken_at = publication.withdrawn_at or utcnow()
    body = json.dumps(
        {
            "event": TAKEDOWN_EVENT,
            "delivery_id": str(delivery_id),
            "publication_id": str(publication.id),
            "media_id": str(publication.media_id),
            "channel": publication.channel,
            "url": url,
            "taken_down_at": taken_at.isoformat(),
            "reason": publication.withdrawn_reason,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    now = utcnow()
    WebhookRepository(session).add_delivery(
        WebhookDelivery(
            id=delivery_id,
            org_id=org_id,
            publication_id=publication.id,
            event=TAKEDOWN_EVENT,
            body=body,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )
    enqueue(session, DELIVER_TASK, str(delivery_id))


@dataclass(frozen=True)
class _Prepared:
    url: str
    secret: str
    body: bytes
    event: str


def backoff_s(settings: Settings, attempts_made: int) -> float:
    """Seconds to wait after the n-th failed attempt: base, 2 x base, 4 x base ... at most
    an hour."""
    return float(min(settings.webhook_backoff_s * 2 ** (attempts_made - 1), MAX_BACKOFF_S))


def attempt_delivery(
    sessions: sessionmaker[Session], settings: Settings, delivery_id: uuid.UUID
) -> float | None:
    """Make one attempt if the delivery is due. Return seconds until the next attempt,
    or None when there is nothing more for this message to do."""
    prepared = _prepare(sessions, settings, delivery_id)
    if prepared is None:
        return None
    status_code, error, duration_ms = _post(settings, delivery_id, prepared)
    return _record(sessions, settings, delivery_id, prepared.url, status_code, error,
                   duration_ms)


def _prepare(
    sessions: sessionmaker[Session], settings: Settings, delivery_id: uuid.UUID
) -> _Prepared | None:
    with transaction(sessions) as session:
        repo = WebhookRepository(session)
        delivery = repo.lock_delivery(delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        now = utcnow()
        due = delivery.next_attempt_at
        if due is not None and due > now + timedelta(seconds=EARLY_SLACK_S):
            # Another message is scheduled for it, or an attempt is in flight.
            return None
        endpoint = repo.endpoint(delivery.org_id)
        if endpoint is None:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.last_error = "the organisation no longer has a webhook configured"
            delivery.next_attempt_at = None
            audit(session, SystemActor("webhooks", delivery.org_id), "webhook.delivery_failed",
                  f"webhook_delivery:{delivery.id}",
                  {"publication": str(delivery.publication_id), "error": delivery.last_error})
            return None
        # Claim the attempt: a duplicate message arriving while we wait on the
        # receiver sees it as not yet due and leaves it alone.
        delivery.next_attempt_at = now + timedelta(seconds=settings.webhook_timeout_s + 30)
        secret = settings.secrets_fernet().decrypt(endpoint.secret_ciphertext).decode()
        return _Prepared(url=endpoint.url, secret=secret, body=delivery.body.encode(),
                         event=delivery.event)


def _post(
    settings: Settings, delivery_id: uuid.UUID, prepared: _Prepared
) -> tuple[int | None, str | None, int]:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ConsentGate-Webhook/1",
        "X-ConsentGate-Event": prepared.event,
        "X-ConsentGate-Delivery": str(delivery_id),
        "X-ConsentGate-Timestamp": timestamp,
        "X-ConsentGate-Signature": "sha256=" + sign(prepared.secret, timestamp, prepared.body),
    }
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        # Redirects are not followed: they would carry a signed notice to a URL
        # nobody configured.
        response = httpx.post(prepared.url, content=prepared.body, headers=headers,
                              timeout=settings.webhook_timeout_s, follow_redirects=False)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"the receiver answered HTTP {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS] or type(exc).__name__
    duration_ms = int((time.monotonic() - started) * 1000)
    return status_code, error, duration_ms


def _record(
    sessions: sessionmaker[Session],
    settings: Settings,
    delivery_id: uuid.UUID,
    url: str,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> float | None:
    with transaction(sessions) as session:
        repo = WebhookRepository(session)
        delivery = repo.lock_delivery(delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        now = utcnow()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        repo.add_attempt(
            WebhookAttempt(delivery_id=delivery.id, number=delivery.attempts, at=now, url=url,
                           status_code=status_code, error=error, duration_ms=duration_ms)
        )
        if error is None:
            delivery.status = DeliveryStatus.DELIVERED.value
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = None
            return None
        delivery.last_error = error
        if delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = DeliveryStatus.FAILED.value
            delivery.next_attempt_at = None
            audit(session, SystemActor("webhooks", delivery.org_id), "webhook.delivery_failed",
                  f"webhook_delivery:{delivery.id}",
                  {"publication": str(delivery.publication_id), "attempts": delivery.attempts,
                   "error": error})
            log.warning("webhook delivery %s failed for good after %d attempts: %s",
                        delivery.id, delivery.attempts, error)
            return None
        wait = backoff_s(settings, delivery.attempts)
        delivery.next_attempt_at = now + timedelta(seconds=wait)
        return wait


def redrive_overdue(sessions: sessionmaker[Session], *, grace_s: float = 600.0) -> int:
    """Re-send deliveries whose message was lost (broker down at commit, worker killed)."""
    with transaction(sessions) as session:
        overdue = WebhookRepository(session).overdue(utcnow() - timedelta(seconds=grace_s))
        for delivery_id in overdue:
            enqueue(session, DELIVER_TASK, str(delivery_id))
    if overdue:
        log.warning("re-sent %d overdue webhook deliveries", len(overdue))
    return len(overdue)
