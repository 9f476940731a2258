"""The consent register and everything screened against it (SQLAlchemy 2).

Every row belongs to an organisation, directly or through its pupil or
medium; repositories always filter by organisation so no request can read
across schools. Consent tables are append-only histories: the current state
is the latest row, and no row is ever updated.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from models.clock import utcnow

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
SerialId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use models.clock.utcnow()")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Role(StrEnum):
    STAFF = "staff"
    SLT = "slt"
    ADMIN = "admin"
    PUBLISHER = "publisher"


class Channel(StrEnum):
    WEBSITE = "website"
    SOCIAL_MEDIA = "social_media"
    NEWSLETTER = "newsletter"
    PRESS = "press"
    # Public areas of the school premises.
    DISPLAY = "display"


class BiometricStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    OBJECTED = "objected"


class BiometricBy(StrEnum):
    PARENT = "parent"
    PUPIL = "pupil"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    REFUSED = "refused"


# Consent to being photographed at all ("may be photographed"), kept in the consent
# histories beside the publication channels under this name. It is not a Channel: nothing
# is ever published "to capture", and every per-channel loop iterates Channel.
CAPTURE = "capture"


class GivenBy(StrEnum):
    GUARDIAN = "guardian"
    PUPIL = "pupil"


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


class Device(StrEnum):
    SCHOOL = "school"
    PERSONAL = "personal"


class MediaStatus(StrEnum):
    QUEUED = "queued"
    SCREENING = "screening"
    SCREENED = "screened"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"
    PURGED = "purged"
    # SLT rejected it: its files are deleted, the row stays for the audit trail.
    REJECTED = "rejected"


class MatchStatus(StrEnum):
    MATCHED = "matched"
    UNKNOWN = "unknown"
    UNCERTAIN = "uncertain"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bumped on every change to templates or biometric consent, so worker
    # processes know their cached gallery is stale.
    gallery_version: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped whenever templates are added or a pupil becomes matchable again (enrolment,
    # re-enrolment, biometric re-grant, return): every medium with faces screened at a
    # lower value is stale, because one of its faces may now match someone else.
    match_epoch: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped in the same transaction as every change that can end a decision (consent,
    # biometrics, pupils, screening results, review decisions, reject, purge, holds).
    # Taking the row lock to bump it is the organisation's gate lock (services.core.uow).
    consent_epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    # Last takedown-feed cursor handed out; advanced only under the gate lock, so cursors
    # appear in commit order within the organisation.
    takedown_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # sha256 hex of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None: never expires. At or after this instant the key answers 401 (migration 0006).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship(lazy="joined")


class Pupil(Base):
    __tablename__ = "pupils"
    __table_args__ = (UniqueConstraint("org_id", "external_id"),
                      Index("ix_pupils_org_year", "org_id", "year_group"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    # The pupil's UPN (unique pupil number) or the school's own id.
    external_id: Mapped[str] = mapped_column(String(64))
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    year_group: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Registration (form) group from the MIS, e.g. "7KB"; None where never imported.
    reg_group: Mapped[str | None] = mapped_column(String(32))


class BiometricConsent(Base):
    """Protection of Freedoms Act 2012 s.26 consent to process a pupil's face. Append-only."""

    __tablename__ = "biometric_consents"

    # Integer ids give insertion order; timestamps can tie within one clock tick.
    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    pupil_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pupils.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(16))
    evidence_ref: Mapped[str] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferencePhoto(Base):
    __tablename__ = "reference_photos"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    pupil_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pupils.id"), index=True)
    # Object holding the Fernet-encrypted photo bytes.
    storage_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FaceTemplate(Base):
    """A pupil's 128-d face encoding, Fernet-encrypted. Exists only under current biometric
    consent."""

    __tablename__ = "face_templates"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    pupil_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pupils.id"), index=True)
    reference_photo_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reference_photos.id", ondelete="CASCADE")
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublicationConsent(Base):
    """A guardian's (or pupil's) consent for one channel. Append-only history."""

    __tablename__ = "publication_consents"
    __table_args__ = (Index("ix_publication_consents_pupil_channel", "pupil_id", "channel"),)

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    pupil_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pupils.id"))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    given_by: Mapped[str] = mapped_column(String(16))
    evidence_ref: Mapped[str] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_on: Mapped[date | None] = mapped_column(Date)


class Media(Base):
    __tablename__ = "media"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"))
    uploader_name: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(500))
    captured_on: Mapped[date | None] = mapped_column(Date)
    device: Mapped[str] = mapped_column(String(16))
    camera_make: Mapped[str | None] = mapped_column(String(200))
    camera_model: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    mime: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # Human-readable cause when status is failed; never contains face data.
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retention_until: Mapped[date] = mapped_column(Date, index=True)
    original_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    screened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The organisation's match_epoch / gallery_version the last screening ran against.
    screened_match_epoch: Mapped[int | None] = mapped_column(Integer)
    screened_gallery_version: Mapped[int | None] = mapped_column(Integer)
    # Set when a pupil matched (or a candidate) in it was erased or left: its faces must
    # be looked at again against the register as it is now.
    needs_rescreen: Mapped[bool] = mapped_column(Boolean, default=False)
    # Videos: frames the decoder yielded at screening; the public copier must yield as many.
    frames_screened: Mapped[int | None] = mapped_column(Integer)
    # Codes with data found at screening that block until SLT decide, e.g.
    # {"code": "video_truncated", "frames": 141, "claimed": 275}.
    screen_flags: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The name the file had on the uploader's device (shown on review cards); None for
    # media uploaded before revision 0008.
    file_name: Mapped[str | None] = mapped_column(String(255))
    # The photography session the upload named (migration 0007), and codes with data
    # found when it was accepted that block until SLT decide, e.g.
    # {"code": "outside_session", "captured_on": "2026-03-01"}. Screening never changes them.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("photo_sessions.id"), index=True)
    upload_flags: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Why screening failed, as a code with data (words are made at the edge), e.g.
    # "screening_crashed" {"attempts": 5}; "storage_unavailable" {"transient": true}.
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Transient errors (storage, database, broker): when the current run of them began,
    # and when the medium is next due to be tried (the sweep re-sends it then).
    transient_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    faces: Mapped[list[Face]] = relationship(
        back_populates="media", cascade="all, delete-orphan", order_by="Face.frame, Face.left"
    )


class Face(Base):
    """One detected face. Holds a box and the match outcome, never an encoding."""

    __tablename__ = "faces"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    frame: Mapped[int] = mapped_column(Integer, default=0)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    left: Mapped[int] = mapped_column(Integer)
    pupil_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pupils.id"), index=True)
    distance: Mapped[float | None] = mapped_column(Float)
    match_status: Mapped[str] = mapped_column(String(16))
    # Pupils this face is close to without being clearly one of them:
    # [{"pupil_id": str, "distance": float}], ids and distances only, never encodings.
    candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Videos: faces of one person across frames share a track number.
    track: Mapped[int | None] = mapped_column(Integer)

    media: Mapped[Media] = relationship(back_populates="faces")


class Approval(Base):
    """An SLT member's approval of a medium for a channel, with the written justification."""

    __tablename__ = "approvals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    approved_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"))
    approver_name: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Publication(Base):
    __tablename__ = "publications"
    __table_args__ = (
        # At most one live copy per (medium, channel): a retried POST cannot make two.
        Index("uq_publications_live", "media_id", "channel", unique=True,
              postgresql_where=text("withdrawn_at IS NULL"),
              sqlite_where=text("withdrawn_at IS NULL")),
        UniqueConstraint("media_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    # Object key of the clean public copy (re-encoded, no metadata).
    public_key: Mapped[str] = mapped_column(String(300))
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    # Redacted copies: ids (str) of the faces blurred in it; None for an unredacted copy.
    blurred_faces: Mapped[list[str] | None] = mapped_column(JSON)
    # Client's Idempotency-Key header for the POST that made it.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Takedown-feed cursor, set when it is taken down (organisation's takedown_seq).
    takedown_seq: Mapped[int | None] = mapped_column(BigInteger)


class AuditHead(Base):
    """Single row holding the newest audit hash; updating it serialises appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """Append-only, hash-chained log. Never holds face data, encodings or pixels."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


# --- consent lifecycle (issue 5; migration 0002) -----------------------------


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    # Every attempt failed; stays listed for SLT until someone acts on it.
    FAILED = "failed"


class WebhookEndpoint(Base):
    """Where an organisation's publishing pipeline hears about takedowns. One per
    organisation. The signing secret is Fernet-encrypted and never returned by the API."""

    __tablename__ = "webhook_endpoints"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One notification to the publishing pipeline. `body` is fixed when the row is
    written, so every attempt sends the same bytes."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    publication_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("publications.id"))
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the next attempt is due; a message arriving earlier finds nothing to do.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        cascade="all, delete-orphan", order_by="WebhookAttempt.number", lazy="selectin"
    )


class WebhookAttempt(Base):
    """Every attempt at a delivery, successful or not. Append-only."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    url: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class LegalHold(Base):
    """Suspends the retention purge of one medium (e.g. an open safeguarding case).
    A hold is active until released; released holds stay as history."""

    __tablename__ = "legal_holds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(Text)


class MediaTombstone(Base):
    """What remains of a purged medium: proof that it existed and was deleted, and when.
    No pixels, no names, no event or purpose text."""

    __tablename__ = "media_tombstones"

    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    captured_on: Mapped[date | None] = mapped_column(Date)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retention_until: Mapped[date] = mapped_column(Date)
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text)
    object_versions_deleted: Mapped[int] = mapped_column(Integer)


class DecisionKind(StrEnum):
    APPROVE = "approve"
    # Publish only a copy with every face not allowed for the channel blurred.
    REDACT = "redact"
    REJECT = "reject"


class DecisionState(StrEnum):
    IN_FORCE = "in_force"
    # Clears an unknown or uncertain face and the policy wants a second SLT member.
    AWAITING_SECOND = "awaiting_second"
    DECLINED = "declined"


class ReviewDecision(Base):
    """An SLT decision on a medium, with its written justification. Approvals it grants
    are written to `approvals` only once it is in force."""

    __tablename__ = "review_decisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    channels: Mapped[list[str]] = mapped_column(JSON)
    # Ids (str) of unknown or uncertain faces SLT cleared for these channels.
    cleared_faces: Mapped[list[str]] = mapped_column(JSON)
    justification: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"))
    decider_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    second_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_tokens.id"))
    second_name: Mapped[str | None] = mapped_column(String(200))
    second_note: Mapped[str | None] = mapped_column(Text)
    second_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The first member asked to publish as soon as the second confirms.
    publish_on_confirm: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its sha256 is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    # Synchroniser token every form post must carry.
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last notice a big action left ({"path", "title", "lines"}): shown on that page,
    # reloads included, until the next one replaces it.
    notice: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


class OutboxItem(Base):
    """Work outside the database that a change needs done: written in the same transaction
    as the change, carried out after commit, and retried until it succeeds. A consent
    change therefore never rolls back because storage is down."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # "delete_object" {"key"} | "delete_prefix" {"prefix"}
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class TemplateJobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TemplateJob(Base):
    """A re-enrolment of an organisation's templates from their stored reference photos
    (services.biometrics.reenrol), with its progress. At most one runs per organisation.

    Photos are taken in id order; ``last_photo_id`` is the last one handled, committed
    with the templates of its batch, so a redelivered job resumes after it. Holds counts
    and ids only, never a template or a photo."""

    __tablename__ = "template_jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # Settings.enrol_jitters the templates are recomputed with.
    jitters: Mapped[int] = mapped_column(Integer)
    # Reference photos in the organisation when the job started (those made later were
    # made with the current settings already).
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)  # templates recomputed
    # Photos the enrolment gate refuses now (their old template is kept) or gone.
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Photos of pupils without current biometric consent, or who left: erased.
    erased: Mapped[int] = mapped_column(Integer, default=0)
    last_photo_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    requested_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class FaceIdentification(Base):
    """SLT named a face: which pupil it is. In force, the face (and, in a video, its whole
    track) is matched to that pupil, so the pupil's own consent decides. Correcting a
    recognised pupil waits for a second SLT member where the policy asks for one."""

    __tablename__ = "face_identifications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    face_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    pupil_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pupils.id"))
    previous_pupil_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    previous_status: Mapped[str] = mapped_column(String(16))
    justification: Mapped[str] = mapped_column(Text)
    # DecisionState values.
    state: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"))
    decider_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    second_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_tokens.id"))
    second_name: Mapped[str | None] = mapped_column(String(200))
    second_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What finds the same face again after a re-screen replaces the face rows (migration
    # 0011): the medium's sha256 when named, and the named face's boxes in pixels,
    # [{"frame": int, "top": int, "right": int, "bottom": int, "left": int}] (a video: one
    # per face of its track). Boxes only, never an encoding.
    media_sha256: Mapped[str | None] = mapped_column(String(64))
    boxes: Mapped[list[dict[str, int]] | None] = mapped_column(JSON)
    # A re-screen could not find the named face safely (services.screen.names): the name
    # is no longer applied and SLT must look again. lost_reason is a code
    # (matched_other_pupil, no_overlap, ambiguous_overlap, file_changed, no_boxes).
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_reason: Mapped[str | None] = mapped_column(String(32))
    # A later naming replaced this one: of the same face, or (after this was lost) of any
    # face of the medium. It is neither carried over nor asks for SLT any more.
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


# --- photography sessions (issue 10; migration 0007) -------------------------


class PhotoSession(Base):
    """SLT's approval that photographs are taken: at an event, on these dates, for one of
    the policy's purposes, by these staff, on these devices (Harewood: "senior management
    is aware that photography/image equipment is being used and for what purpose")."""

    __tablename__ = "photo_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    event: Mapped[str] = mapped_column(String(200))
    # The purpose's name as the policy spells it.
    purpose: Mapped[str] = mapped_column(String(200))
    # ISO dates ("2026-03-01"), sorted, at least one.
    dates: Mapped[list[str]] = mapped_column(JSON)
    # Ids (str) of the API tokens (staff) allowed to take photographs at it.
    staff: Mapped[list[str]] = mapped_column(JSON)
    # Device values allowed ("school", "personal").
    devices: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_tokens.id"))
    creator_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingObject(Base):
    """An object about to be written to the store (an intent), committed in its own short
    transaction before the write. The transaction that commits the row owning the object
    deletes it; one left older than the grace period was never linked, and the intent
    sweep deletes every version under its key (services/core/intents.py)."""

    __tablename__ = "pending_objects"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
