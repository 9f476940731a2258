"""Shared machinery for the race tests (tests/safety/test_races.py): a school with one
pupil written through the real register services, a screened medium per round (the rows
screening would write, with a real JPEG original), two real threads released together
by a barrier, and the check of the publication gate's invariant after every round.

The invariant: no live publication (withdrawn_at IS NULL) shows a face that is not a
pupil with current consent for its channel, and the public URL of every copy that is
down (or should be) answers 410.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import (
    BiometricConsent,
    BiometricStatus,
    Channel,
    ConsentStatus,
    Device,
    Face,
    MatchStatus,
    Media,
    MediaKind,
    MediaStatus,
    Publication,
    PublicationConsent,
    Pupil,
    Role,
)
from models.repositories.lifecycle import TakedownRepository
from models.repositories.organisations import OrganisationRepository
from services.api.errors import status_for
from services.core.auth import Principal, authenticate, issue_token
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import Conflict, ConsentGateError, Gone, NotFound
from services.core.policy import Policy
from services.gate.decide import decide_publication, organisation_policy
from services.register.service import create_pupil, record_biometric, set_publication_consent
from services.takedown import service as takedown
from storage.filesystem import FilesystemStore

# A school whose policy needs no SLT approval to publish: a matched, consented face is
# enough, so the only thing that can stop a publish is the change it races.
POLICY = Policy(name="race school", slt_approval_required=False,
                channels=[Channel.WEBSITE, Channel.NEWSLETTER])
CHANNEL = Channel.WEBSITE
# Longest a round may take before it counts as a deadlock (SQLite's busy timeout is 30 s,
# PostgreSQL detects lock cycles in about 1 s).
ROUND_TIMEOUT_S = 90.0
# What a publish may legitimately answer when it loses a race: refused (Blocked is a
# Conflict), the medium is gone (NotFound, including its original's object), or purged.
REFUSALS: tuple[type[ConsentGateError], ...] = (Conflict, NotFound, Gone)


def _picture() -> bytes:
    """A small face-free JPEG; the rows say where its faces are, as screening would."""
    h, w = 48, 64
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


PICTURE = _picture()


class WatchedStore(FilesystemStore):
    """The real filesystem store, counting the public copies written under published/,
    so a round can tell a refusal made before the copy from one made after it (by the
    decision taken again under the gate lock)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._lock = threading.Lock()
        self.copies = 0

    def put(self, key: str, data: bytes | BinaryIO, *, length: int | None = None,
            content_type: str = "application/octet-stream") -> None:
        super().put(key, data, length=length, content_type=content_type)
        if key.startswith("published/"):
            with self._lock:
                self.copies += 1

    def take_count(self) -> int:
        with self._lock:
            count, self.copies = self.copies, 0
        return count


@dataclass(frozen=True)
class School:
    """One organisation on one backend, with its principals and one pupil."""

    sessions: sessionmaker[Session]
    store: WatchedStore
    settings: Settings
    org_id: uuid.UUID
    slt: Principal
    publisher: Principal
    staff: Principal
    pupil: Pupil


def make_school(sessions: sessionmaker[Session], store: WatchedStore,
                settings: Settings) -> School:
    """An organisation, SLT/publisher/staff tokens, and a pupil with biometric consent and
    website consent granted, all written through the real services."""
    slug = f"race-{uuid.uuid4().hex[:10]}"
    with transaction(sessions) as session:
        org = OrganisationRepository(session).create(slug, slug.title(),
                                                     POLICY.model_dump(mode="json"))
        tokens = {role: issue_token(session, org, role, f"{role.value} of {slug}")
                  for role in (Role.SLT, Role.PUBLISHER, Role.STAFF)}
        org_id = org.id
    with sessions() as session:
        principals = {role: authenticate(session, secret) for role, secret in tokens.items()}
    slt = principals[Role.SLT]
    # One write unit per step, as one request each (a change takes the gate lock before
    # it writes its audit event, so it cannot follow another audited step).
    with transaction(sessions) as session:
        pupil = create_pupil(session, slt, external_id="UPN0001", given_name="Ada",
                             family_name="Race", year_group="Year 5")
    with transaction(sessions) as session:
        record_biometric(session, settings, slt, pupil, status=BiometricStatus.GRANTED,
                         by="parent", evidence_ref="biometric form")
    with transaction(sessions) as session:
        set_publication_consent(session, settings, slt, pupil, CHANNEL,
                                status=ConsentStatus.GRANTED, given_by="guardian",
                                evidence_ref="consent form", expires_on=None)
    return School(sessions=sessions, store=store, settings=settings, org_id=org_id,
                  slt=slt, publisher=principals[Role.PUBLISHER], staff=principals[Role.STAFF],
                  pupil=pupil)


def new_medium(school: School, *, before: Callable[[Session], object] | None = None,
               retention_until: date | None = None) -> uuid.UUID:
    """A screened image with one face matched to the school's pupil: the row the screening
    worker writes, screened against the organisation's gallery as it is now. `before`
    runs first in the same write unit (restoring what the previous round changed)."""
    media_id = uuid.uuid4()
    key = f"originals/{school.org_id}/{media_id}.jpg"
    school.store.put(key, PICTURE, content_type="image/jpeg")
    now = utcnow()
    with transaction(school.sessions) as session:
        if before is not None:
            before(session)
        orgs = OrganisationRepository(session)
        match_epoch = orgs.epochs(school.org_id)[1]
        session.add(Media(
            id=media_id, org_id=school.org_id, uploaded_by=school.staff.token_id,
            uploader_name=school.staff.name, event="Sports day", purpose="website",
            device=Device.SCHOOL.value, sha256=uuid.uuid4().hex * 2, size_bytes=len(PICTURE),
            kind=MediaKind.IMAGE.value, mime="image/jpeg", width=64, height=48,
            status=MediaStatus.SCREENED.value, attempts=1,
            retention_until=retention_until or (now.date() + timedelta(days=365)),
            original_key=key, created_at=now, status_changed_at=now, screened_at=now,
            screened_match_epoch=match_epoch,
            screened_gallery_version=orgs.gallery_version(school.org_id),
            needs_rescreen=False,
        ))
        session.flush()
        session.add(Face(media_id=media_id, frame=0, top=8, right=40, bottom=32, left=16,
                         pupil_id=school.pupil.id, distance=0.31,
                         match_status=MatchStatus.MATCHED.value, candidates=None))
    return media_id


# --- two sides released together ---------------------------------------------------


@dataclass
class Side:
    """What one thread's call returned or raised, and how long it took."""

    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def race(first: Callable[[], Any], second: Callable[[], Any], *,
         delays: tuple[float, float] = (0.0, 0.0)) -> tuple[Side, Side]:
    """Run both calls in real threads released by one barrier (each after its delay, to
    move the point where they cross). A side still running after ROUND_TIMEOUT_S is a
    deadlock and fails the test."""
    barrier = threading.Barrier(2)
    sides = (Side(), Side())

    def run(side: Side, call: Callable[[], Any], delay: float) -> None:
        try:
            barrier.wait(ROUND_TIMEOUT_S)
            if delay:
                time.sleep(delay)
            start = time.perf_counter()
            try:
                side.value = call()
            finally:
                side.seconds = time.perf_counter() - start
        except BaseException as exc:  # reported by the caller, whatever it is
            side.error = exc

    threads = [threading.Thread(target=run, args=(side, call, delay), daemon=True)
               for side, call, delay in zip(sides, (first, second), delays, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ROUND_TIMEOUT_S)
    stuck = [n for n, thread in enumerate(threads) if thread.is_alive()]
    assert not stuck, f"side(s) {stuck} still running after {ROUND_TIMEOUT_S}s: a deadlock"
    return sides


def describe(error: BaseException) -> str:
    details = getattr(error, "details", None)
    return f"{type(error).__module__}.{type(error).__name__}: {error} {details or ''}"


def assert_refusal_or_success(side: Side, what: str) -> None:
    """A publish either succeeded or was refused with one of the expected errors, never
    a 500 (an error the API maps to 500, or anything outside the error hierarchy)."""
    if side.error is None:
        return
    assert isinstance(side.error, REFUSALS), f"{what} raised {describe(side.error)}"
    assert status_for(side.error) in (404, 409, 410), describe(side.error)


def assert_succeeded(side: Side, what: str) -> None:
    assert side.error is None, f"{what} raised {describe(side.error)}"


# --- the invariant ---------------------------------------------------------------


def _biometric_current(rows: list[tuple[str, str]]) -> bool:
    """Written from s.26 directly (not services.gate.rules): the newest parent record is
    a grant and the pupil has not objected since or before."""
    parent = [status for status, by in rows if by == "parent"]
    pupil = [status for status, by in rows if by == "pupil"]
    return bool(parent) and parent[-1] == BiometricStatus.GRANTED.value and (
        not pupil or pupil[-1] == BiometricStatus.GRANTED.value)


def independent_verdict(session: Session, publication: Publication, today: date) -> list[str]:
    """Why this live copy must not be up, read from the rows alone (without the gate's
    code): every visible face must be a matched, active pupil with current biometric
    consent and a granted, unexpired consent for the channel, on a medium that is
    screened and not rejected or purged. Empty if it may stay up."""
    problems: list[str] = []
    status = session.scalar(select(Media.status).where(Media.id == publication.media_id))
    if status not in (MediaStatus.SCREENED.value, MediaStatus.NEEDS_REVIEW.value):
        problems.append(f"medium is {status}")
    blurred = set(publication.blurred_faces or [])
    faces = session.execute(select(Face.id, Face.match_status, Face.pupil_id)
                            .where(Face.media_id == publication.media_id)).all()
    for face_id, match_status, pupil_id in faces:
        if str(face_id) in blurred:
            continue
        if match_status != MatchStatus.MATCHED.value or pupil_id is None:
            problems.append(f"face {face_id} is {match_status}")
            continue
        if not session.scalar(select(Pupil.active).where(Pupil.id == pupil_id)):
            problems.append(f"pupil {pupil_id} has left")
        history = session.execute(
            select(BiometricConsent.status, BiometricConsent.by)
            .where(BiometricConsent.pupil_id == pupil_id).order_by(BiometricConsent.id)
        ).all()
        if not _biometric_current([(s, b) for s, b in history]):
            problems.append(f"pupil {pupil_id} has no current biometric consent")
        consent = session.execute(
            select(PublicationConsent.status, PublicationConsent.expires_on)
            .where(PublicationConsent.pupil_id == pupil_id,
                   PublicationConsent.channel == publication.channel)
            .order_by(PublicationConsent.id.desc()).limit(1)
        ).one_or_none()
        if consent is None or consent[0] != ConsentStatus.GRANTED.value or (
                consent[1] is not None and consent[1] < today):
            problems.append(f"pupil {pupil_id} has no consent for {publication.channel}")
    return problems


@dataclass
class Check:
    """What one check of the invariant found."""

    live: list[uuid.UUID] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    not_gone: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def check_gate(school: School, media_ids: list[uuid.UUID]) -> Check:
    """Look at the committed state with fresh sessions: every live publication of the
    organisation is decided again, by the gate (`decide_publication`) and independently
    from the rows; then the public URL of every publication of `media_ids` (and of every
    live one) is asked for, and each that is down, or should be, must answer Gone (410);
    each that may stay up must be served. Finally no copy under published/ may be left
    without its row."""
    found = Check()
    should_be_down: set[uuid.UUID] = set()
    with transaction(school.sessions, write=False) as session:
        today = local_today(organisation_policy(session, school.org_id))
        live = list(session.scalars(
            select(Publication).join(Media, Media.id == Publication.media_id)
            .where(Media.org_id == school.org_id, Publication.withdrawn_at.is_(None))))
        media = {m.id: m for m in TakedownRepository(session).media_with_faces(
            list({p.media_id for p in live}))}
        for publication in live:
            found.live.append(publication.id)
            gate = decide_publication(session, media[publication.media_id], publication,
                                      today=today)
            rows = independent_verdict(session, publication, today)
            if not gate.allowed or rows:
                should_be_down.add(publication.id)
                found.violations.append(
                    f"live publication {publication.id} of media {publication.media_id}: "
                    f"gate says {gate.codes}, rows say {rows}")
        per_medium: dict[uuid.UUID, int] = {}
        for publication in live:
            per_medium[publication.media_id] = per_medium.get(publication.media_id, 0) + 1
        found.violations.extend(f"media {m} has {n} live copies on one channel"
                                for m, n in per_medium.items() if n > 1)
        everything = list(session.scalars(
            select(Publication).where(Publication.media_id.in_(media_ids))))
        everything += [p for p in live if p.media_id not in set(media_ids)]
        keys = set(session.scalars(
            select(Publication.public_key).join(Media, Media.id == Publication.media_id)
            .where(Media.org_id == school.org_id)))
    for publication in everything:
        down = publication.withdrawn_at is not None or publication.id in should_be_down
        suffix = publication.public_key.rsplit(".", 1)[-1]
        try:
            served = takedown.servable(school.sessions, school.settings, publication.id,
                                       suffix)
        except Gone as exc:
            if not down:
                found.not_gone.append(f"{publication.id} may stay up but answered Gone")
            elif status_for(exc) != 410:
                found.not_gone.append(f"{publication.id} answered {status_for(exc)}")
            continue
        except ConsentGateError as exc:
            found.not_gone.append(f"{publication.id} answered {status_for(exc)}: "
                                  f"{describe(exc)}")
            continue
        if down:
            found.not_gone.append(f"{publication.id} is down (or should be) but is served "
                                  f"from {served.key}")
    found.orphans = sorted(set(school.store.list_keys(f"published/{school.org_id}")) - keys)
    return found


def assert_gate_holds(school: School, media_ids: list[uuid.UUID], when: str) -> Check:
    found = check_gate(school, media_ids)
    assert not found.violations, f"{when}: {found.violations}"
    assert not found.not_gone, f"{when}: {found.not_gone}"
    assert not found.orphans, f"{when}: public copies without a publication: {found.orphans}"
    return found
