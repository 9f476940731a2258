"""A stateful test of the consent gate: random sequences of register changes, screening,
SLT decisions, publishing, retention and the passing of time, run against the real
services on a real database, with one question asked after every step:

    does every live publication show only faces allowed on its channel *now*,
    or is it not served?

"Allowed now" is computed here, from this test's own model of the world (who is on
roll, whose biometric consent is current, whose consent for which channel is granted
and unexpired today in Europe/London, which faces SLT cleared, which media are stale,
rejected or purged), never from the gate's code. The face engine is not run: screening
is modelled as its result, derived from the gallery as it was when the medium was
claimed, and saved through the real claim and save path under the real locks.

Besides the safety property the model also predicts every outcome (a publish is
created exactly when the gate should allow it, a live copy the gate should allow is
served, a change takes down exactly what it should), so the model and the services
cannot drift apart silently.
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from PIL import Image
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from models import clock
from models.db import session_factory, transaction
from models.orm import (
    BiometricBy,
    BiometricStatus,
    Channel,
    ConsentStatus,
    DecisionKind,
    Device,
    Face,
    GivenBy,
    MediaStatus,
    Organisation,
    Publication,
    Pupil,
    Role,
)
from models.repositories.organisations import OrganisationRepository, TokenRepository
from services.biometrics import enrol
from services.core import runtime
from services.core.auth import Principal
from services.core.config import Settings, get_settings
from services.core.errors import Conflict, Gone, InvalidInput, NotFound
from services.core.policy import Policy
from services.lifecycle.retention import purge_medium
from services.publish.service import Blocked, publish, unpublish
from services.register import service as register
from services.review import identify
from services.review.decisions import DecisionRequest, record_decision
from services.screen.service import _Claim, _claim, _Found, _save, mark_failed
from services.takedown import service as takedown
from services.takedown.service import Held, servable
from services.upload.service import UploadForm, accept_upload
from storage.filesystem import FilesystemStore
from workers.celery_app import app as celery_app
from workers.engine.types import ScreenedFace

LONDON = ZoneInfo("Europe/London")
# Every example starts at noon in London in British Summer Time, a day before a
# "until 31 July" consent ends; the clock then moves in whole hours only, so a step
# never straddles midnight because of the seconds the step itself takes.
START = datetime(2026, 7, 30, 12, 0, tzinfo=LONDON)
RETENTION_DAYS = 30
CHANNELS = (Channel.WEBSITE, Channel.NEWSLETTER)
POLICY = Policy(
    name="state-machine",
    retention_days=RETENTION_DAYS,
    personal_devices="with_permission",
    slt_approval_required=False,
    channels=[Channel.WEBSITE, Channel.NEWSLETTER, Channel.DISPLAY],
    # A recognised pupil without consent to being photographed blocks every channel.
    capture_consent_required=True,
)
# Templates are compared only by the face engine, which this test does not run.
PUPILS = ("A", "B")

# Who a face in a photo really is. The engine's verdict on it depends on the gallery.
PUPIL_A, PUPIL_B = "A", "B"
LOOKS_LIKE_A, LOOKS_LIKE_B = "like-A", "like-B"  # a visitor close to a pupil's templates
LOOKS_LIKE_BOTH = "like-AB"  # close to both pupils' templates
STRANGER = "stranger"  # nobody on the register
BLURRED = "blurred"  # too small or turned to judge at all
PEOPLE = (PUPIL_A, PUPIL_B, LOOKS_LIKE_A, LOOKS_LIKE_B, LOOKS_LIKE_BOTH, STRANGER, BLURRED)
# Most faces in a school's photos are its pupils'.
LIKELY_PEOPLE = (PUPIL_A, PUPIL_A, PUPIL_A, PUPIL_B, PUPIL_B, PUPIL_B, *PEOPLE)
USUAL_CONSENTS: tuple[tuple[Channel, ...], ...] = (
    (Channel.WEBSITE, Channel.NEWSLETTER), (Channel.WEBSITE, Channel.NEWSLETTER),
    (Channel.WEBSITE,), (Channel.NEWSLETTER,), ())

HOURS = (1, 5, 11, 13, 24, 24 * 2, 24 * 7, 24 * 31)


# --- the model -------------------------------------------------------------------------


@dataclass
class PupilModel:
    key: str
    id: uuid.UUID
    active: bool = True
    # Newest biometric record by a parent and by the pupil (status), if any.
    parent_bio: str | None = None
    pupil_bio: str | None = None
    has_templates: bool = False
    # channel -> (status, expires_on) of the newest record.
    consent: dict[str, tuple[str, date | None]] = field(default_factory=dict)
    # Newest capture consent record ("may be photographed"): (status, expires_on).
    capture: tuple[str, date | None] | None = None

    def capture_in_force(self, today: date) -> bool:
        status, expires_on = self.capture or (ConsentStatus.WITHDRAWN, None)
        return status == ConsentStatus.GRANTED and (expires_on is None or today <= expires_on)

    def biometric_current(self) -> bool:
        return self.parent_bio == BiometricStatus.GRANTED and self.pupil_bio in (
            None, BiometricStatus.GRANTED)

    def consent_in_force(self, channel: str, today: date) -> bool:
        status, expires_on = self.consent.get(channel, (ConsentStatus.WITHDRAWN, None))
        return status == ConsentStatus.GRANTED and (expires_on is None or today <= expires_on)


@dataclass(frozen=True)
class FaceModel:
    id: uuid.UUID
    left: int
    status: str  # matched | unknown | uncertain
    pupil: str | None
    candidates: tuple[str, ...]


@dataclass
class PendingClaim:
    claim: _Claim
    gallery: frozenset[str]  # pupils with templates when the medium was claimed
    gallery_version: int
    match_epoch: int


@dataclass(eq=False)
class MediaModel:
    id: uuid.UUID
    people: tuple[str, ...]
    device: str
    retention_until: date
    status: str = MediaStatus.QUEUED.value
    faces: list[FaceModel] = field(default_factory=list)
    screened_epoch: int | None = None
    needs_rescreen: bool = False
    approved: set[str] = field(default_factory=set)
    cleared: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    claims: list[PendingClaim] = field(default_factory=list)
    # SLT's names in force, by the face's left edge (the model's boxes never overlap):
    # (pupil named, pupil the engine had matched or None). A re-screen carries them over.
    names: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    # A re-screen found a named face matched to someone else: blocked until SLT name again.
    name_lost: bool = False

    def __repr__(self) -> str:
        return f"<medium {self.people} {self.device} {self.status}>"


ALLOWED, HELD, BLOCKED = "allowed", "held", "blocked"


def photo(seed: int) -> bytes:
    """A small real JPEG (the screening result is modelled; the copy is really made)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(80, 200, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def face_box(i: int) -> tuple[int, int, int, int]:
    left = 10 + 45 * i
    return (20, left + 35, 60, left)  # (top, right, bottom, left)


# --- the database under test -----------------------------------------------------------


class Backend:
    """One database for a whole test run, emptied between examples."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sessions: sessionmaker[Session] = session_factory(url)
        self._admin: Engine = create_engine(url, poolclass=NullPool)

    def empty(self) -> None:
        """Every table but alembic_version, as conftest's `clean_db` does. DELETE with
        foreign-key triggers off rather than TRUNCATE: on tables this small it is ten
        times faster (TRUNCATE costs ~0.5 s per example here)."""
        with self._admin.begin() as conn:
            if self._admin.dialect.name == "postgresql":
                tables = conn.execute(text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                    "AND tablename <> 'alembic_version'")).scalars().all()
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))
            else:
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                tables = conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                    "'sqlite_%' AND name <> 'alembic_version'")).scalars().all()
                for table in tables:
                    conn.exec_driver_sql(f'DELETE FROM "{table}"')

    def dispose(self) -> None:
        self._admin.dispose()


@dataclass
class World:
    backend: Backend
    store: FilesystemStore
    settings: Settings
    # What the runs reached, printed at the end (pytest -s) to show the test bites.
    seen: Counter[str] = field(default_factory=Counter)


WORLD: World | None = None


class GateMachine(RuleBasedStateMachine):
    """The consent gate driven through its services, checked against a model."""

    media = Bundle("media")

    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None
        self.world = WORLD
        self.sessions = WORLD.backend.sessions
        self.store = WORLD.store
        self.settings = WORLD.settings
        WORLD.backend.empty()
        WORLD.seen["examples"] += 1
        takedown.decisions.clear()
        clock.reset()
        self.offset = START.astimezone(UTC) - datetime.now(UTC)
        clock.travel(self.offset)

        self.match_epoch = 0
        self.gallery_version = 0
        self.uploads = 0
        self.all_media: list[MediaModel] = []
        # (medium, channel) -> publication id, for copies that ought to be live.
        self.live: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        with transaction(self.sessions) as s:
            org = OrganisationRepository(s).create(
                "state-machine", "State Machine Primary", POLICY.model_dump(mode="json"))
            principals = {}
            for role in (Role.SLT, Role.STAFF, Role.PUBLISHER):
                token = TokenRepository(s).create(org.id, role.value, role.value,
                                                  uuid.uuid4().hex * 2)
                principals[role] = token.id
            pupils = {}
            for n, key in enumerate(PUPILS):
                pupil = Pupil(org_id=org.id, external_id=f"UPN{n:04d}", given_name=key,
                              family_name="Pupil", year_group="Year 5", active=True)
                s.add(pupil)
                s.flush()
                pupils[key] = pupil.id
            org_row: Organisation = org
        self.org_id = org_row.id
        self.slt = Principal(principals[Role.SLT], org_row, Role.SLT, "Ms Slt")
        self.staff = Principal(principals[Role.STAFF], org_row, Role.STAFF, "Mr Staff")
        self.publisher = Principal(principals[Role.PUBLISHER], org_row, Role.PUBLISHER,
                                   "Web Team")
        self.pupils = {key: PupilModel(key, pid) for key, pid in pupils.items()}

    def teardown(self) -> None:
        clock.reset()
        takedown.decisions.clear()

    # --- the model's clock and judgements ---

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def london_today(self) -> date:
        return self.now().astimezone(LONDON).date()

    def is_stale(self, m: MediaModel) -> bool:
        if not m.faces:
            return False
        return m.needs_rescreen or m.screened_epoch is None or m.screened_epoch < self.match_epoch

    def face_ok(self, m: MediaModel, f: FaceModel, channel: str, today: date) -> bool:
        if f.status != "matched" and not f.candidates and channel in m.cleared.get(f.id, ()):
            return True
        if f.status != "matched" or f.pupil is None:
            return False
        p = self.pupils[f.pupil]
        return p.active and p.biometric_current() and p.consent_in_force(channel, today)

    def verdict(self, m: MediaModel, channel: str) -> str:
        """What the gate must say about this medium on this channel now."""
        today = self.london_today()
        reasons: set[str] = set()
        if m.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            reasons.add("pending")
        elif m.status in (MediaStatus.REJECTED, MediaStatus.PURGED, MediaStatus.FAILED):
            reasons.add(m.status)
        else:
            if self.is_stale(m):
                reasons.add("stale")
            if not all(self.face_ok(m, f, channel, today) for f in m.faces):
                reasons.add("faces")
            if m.name_lost:
                reasons.add("named face lost")
            # Whatever SLT cleared or approved: a recognised pupil who may not be
            # photographed blocks every channel.
            if any(f.status == "matched" and f.pupil is not None
                   and not self.pupils[f.pupil].capture_in_force(today) for f in m.faces):
                reasons.add("no capture consent")
        if m.device == Device.PERSONAL and channel not in m.approved:
            reasons.add("personal device")
        if not reasons:
            return ALLOWED
        return HELD if reasons <= {"pending", "stale"} else BLOCKED

    def pupil_row(self, s: Session, key: str) -> Pupil:
        return register.get_pupil(s, self.slt, self.pupils[key].id)

    def erased(self, key: str) -> None:
        """The model of `enrol.erase`: templates gone, media naming the pupil re-checked."""
        self.pupils[key].has_templates = False
        self.gallery_version += 1
        for m in self.all_media:
            if any(f.pupil == key or key in f.candidates for f in m.faces):
                m.needs_rescreen = True

    def drop_live(self, m: MediaModel) -> None:
        for channel in CHANNELS:
            self.live.pop((m.id, channel.value), None)

    # --- set-up ---

    @initialize(
        target=media,
        consents=st.fixed_dictionaries({k: st.sampled_from(USUAL_CONSENTS) for k in PUPILS}),
        ends_in=st.fixed_dictionaries({k: st.sampled_from([None, 0, 1, 3])
                                       for k in PUPILS}),
        unenrolled=st.sampled_from([(), (), (), (PUPIL_A,), (PUPIL_B,)]),
        photos=st.lists(st.lists(st.sampled_from(LIKELY_PEOPLE), min_size=1, max_size=2),
                        min_size=1, max_size=3),
        on_the_website=st.sampled_from([True, True, False]),
        no_capture=st.sampled_from([(), (), (), (PUPIL_A,), (PUPIL_B,)]),
    )
    def school_year_starts(self, consents: dict[str, tuple[Channel, ...]],
                           ends_in: dict[str, int | None], unenrolled: tuple[str, ...],
                           photos: list[list[str]], on_the_website: bool,
                           no_capture: tuple[str, ...]) -> MultipleResults[MediaModel]:
        """A register the way most pupils are on it (biometric consent, enrolled, consent
        for some channels, some of it ending soon) and a few photos already screened
        against it, and usually published wherever the gate allows."""
        for key in PUPILS:
            self.biometric(key, BiometricBy.PARENT, BiometricStatus.GRANTED)
            if key not in unenrolled:
                self.enrol(key)
            for channel in consents[key]:
                self.grant(key, channel, ends_in[key])
            if key not in no_capture:
                self.capture(key, ConsentStatus.GRANTED)
        uploaded = []
        for people in photos:
            m = self.upload(people, Device.SCHOOL, 0)
            self.screen(m)
            uploaded.append(m)
        if on_the_website:
            self.publish_everything()
        return multiple(*uploaded)

    # --- the register ---

    @rule(key=st.sampled_from(PUPILS))
    def enrol(self, key: str) -> None:
        """A reference photo: the real enrolment path (the engine's template, gate lock,
        consent and roll checked again, `store_template`)."""
        p = self.pupils[key]
        if not (p.active and p.biometric_current()):
            with pytest.raises(Conflict), transaction(self.sessions) as s:
                register.add_reference_photo(s, self.store, self.settings, self.slt,
                                             self.pupil_row(s, key), REFERENCE_PHOTO[0])
            return
        with transaction(self.sessions) as s:
            register.add_reference_photo(s, self.store, self.settings, self.slt,
                                         self.pupil_row(s, key), REFERENCE_PHOTO[0])
        p.has_templates = True
        self.match_epoch += 1
        self.gallery_version += 1

    @rule(key=st.sampled_from(PUPILS),
          by=st.sampled_from([BiometricBy.PARENT, BiometricBy.PUPIL]),
          status=st.sampled_from([BiometricStatus.GRANTED, *BiometricStatus]))
    def biometric(self, key: str, by: BiometricBy, status: BiometricStatus) -> None:
        p = self.pupils[key]
        with transaction(self.sessions) as s:
            outcome = register.record_biometric(
                s, self.settings, self.slt, self.pupil_row(s, key), status=status,
                by=by.value, evidence_ref=f"form {status} {by}")
        was_current = p.biometric_current()
        if by == BiometricBy.PARENT:
            p.parent_bio = status.value
        else:
            p.pupil_bio = status.value
        assert outcome.current == p.biometric_current()
        if not p.biometric_current():
            self.erased(key)
        elif not was_current:
            self.gallery_version += 1

    @rule(key=st.sampled_from(PUPILS), channel=st.sampled_from(CHANNELS),
          expires_in=st.one_of(st.none(), st.integers(-1, 3)))
    def grant(self, key: str, channel: Channel, expires_in: int | None) -> None:
        expires_on = None if expires_in is None else self.london_today() + timedelta(
            days=expires_in)
        with transaction(self.sessions) as s:
            register.set_publication_consent(
                s, self.settings, self.slt, self.pupil_row(s, key), channel,
                status=ConsentStatus.GRANTED, given_by=GivenBy.GUARDIAN.value,
                evidence_ref="consent form", expires_on=expires_on)
        self.pupils[key].consent[channel.value] = (ConsentStatus.GRANTED.value, expires_on)

    @rule(key=st.sampled_from(PUPILS), channel=st.sampled_from(CHANNELS))
    def withdraw(self, key: str, channel: Channel) -> None:
        with transaction(self.sessions) as s:
            register.set_publication_consent(
                s, self.settings, self.slt, self.pupil_row(s, key), channel,
                status=ConsentStatus.WITHDRAWN, given_by=GivenBy.GUARDIAN.value,
                evidence_ref="withdrawal letter", expires_on=None)
        self.pupils[key].consent[channel.value] = (ConsentStatus.WITHDRAWN.value, None)

    @rule(key=st.sampled_from(PUPILS), channel=st.sampled_from(CHANNELS))
    def refuse(self, key: str, channel: Channel) -> None:
        """The form came back saying no (not the same as never coming back)."""
        with transaction(self.sessions) as s:
            register.set_publication_consent(
                s, self.settings, self.slt, self.pupil_row(s, key), channel,
                status=ConsentStatus.REFUSED, given_by=GivenBy.GUARDIAN.value,
                evidence_ref="form: no", expires_on=None)
        self.pupils[key].consent[channel.value] = (ConsentStatus.REFUSED.value, None)

    @rule(key=st.sampled_from(PUPILS),
          status=st.sampled_from([ConsentStatus.GRANTED, *ConsentStatus]))
    def capture(self, key: str, status: ConsentStatus) -> None:
        """Consent to being photographed at all: granted, refused or withdrawn."""
        with transaction(self.sessions) as s:
            register.set_capture_consent(
                s, self.settings, self.slt, self.pupil_row(s, key), status=status,
                given_by=GivenBy.GUARDIAN.value, evidence_ref=f"capture form {status}",
                expires_on=None)
        self.pupils[key].capture = (status.value, None)

    @rule(key=st.sampled_from(PUPILS))
    def leave(self, key: str) -> None:
        p = self.pupils[key]
        with transaction(self.sessions) as s:
            register.set_active(s, self.settings, self.slt, self.pupil_row(s, key), False)
        if p.active:
            p.active = False
            self.erased(key)

    @rule(key=st.sampled_from(PUPILS))
    def come_back(self, key: str) -> None:
        p = self.pupils[key]
        with transaction(self.sessions) as s:
            register.set_active(s, self.settings, self.slt, self.pupil_row(s, key), True)
        if not p.active:
            p.active = True
            self.match_epoch += 1
            self.gallery_version += 1

    @rule(hours=st.sampled_from(HOURS))
    def expire(self, hours: int) -> None:
        """Time passes (the fake clock): consents reach their end date, retention ends."""
        clock.travel(timedelta(hours=hours))
        self.offset += timedelta(hours=hours)

    # --- media and screening ---

    @rule(target=media,
          people=st.lists(st.sampled_from(LIKELY_PEOPLE), max_size=3),
          device=st.sampled_from([Device.SCHOOL, Device.SCHOOL, Device.PERSONAL]),
          days_ago=st.sampled_from([0, 0, RETENTION_DAYS + 5]))
    def upload(self, people: list[str], device: Device, days_ago: int) -> MediaModel:
        self.uploads += 1
        captured_on = self.london_today() - timedelta(days=days_ago)
        with transaction(self.sessions) as s:
            result = accept_upload(
                s, self.store, self.settings, self.staff, io.BytesIO(photo(self.uploads)),
                UploadForm(event="Sports day", purpose="publicity", device=device,
                           captured_on=captured_on))
            media_id = result.media.id
            assert result.media.retention_until == captured_on + timedelta(
                days=RETENTION_DAYS)
        m = MediaModel(id=media_id, people=tuple(people), device=device.value,
                       retention_until=captured_on + timedelta(days=RETENTION_DAYS))
        self.all_media.append(m)
        return m

    def _claimable(self, m: MediaModel) -> bool:
        if m.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            return True
        return m.status in (MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW) and self.is_stale(m)

    @rule(m=media)
    def claim(self, m: MediaModel) -> None:
        """A screening worker takes the medium (the engine then runs with no lock held)."""
        claimed = _claim(self.sessions, m.id)
        if not self._claimable(m):
            assert claimed is None, "claimed a medium with nothing to screen"
            return
        assert claimed is not None, "a queued or stale medium was not claimed"
        m.status = MediaStatus.SCREENING.value
        m.claims.append(PendingClaim(
            claimed, frozenset(k for k, p in self.pupils.items() if p.has_templates),
            self.gallery_version, self.match_epoch))

    def _engine_result(self, m: MediaModel, gallery: frozenset[str]) -> list[ScreenedFace]:
        found = []
        for i, who in enumerate(m.people):
            box = face_box(i)
            if who in PUPILS and who in gallery:
                found.append(ScreenedFace(box, 0, "matched", str(self.pupils[who].id), 0.31))
            elif who.startswith("like-") and gallery & set(who[5:]):
                near = tuple((str(self.pupils[k].id), 0.47 + 0.01 * n)
                             for n, k in enumerate(sorted(gallery & set(who[5:]))))
                found.append(ScreenedFace(box, 0, "uncertain", None, near[0][1],
                                          candidates=near))
            elif who == BLURRED:
                found.append(ScreenedFace(box, 0, "uncertain", None, None))
            else:
                found.append(ScreenedFace(box, 0, "unknown", None, 0.8 if gallery else None))
        return found

    @rule(m=media, which=st.integers(0, 1))
    def finish_screening(self, m: MediaModel, which: int) -> None:
        """The worker saves what the engine found (under the gate lock)."""
        if not m.claims:
            return
        pending = m.claims.pop(min(which, len(m.claims) - 1))
        found = self._engine_result(m, pending.gallery)
        status = _save(self.sessions, self.settings, m.id, pending.claim, _Found(found))
        if m.status != MediaStatus.SCREENING:
            assert status is None, f"a screening result was saved over a {m.status} medium"
            return
        unresolved = any(f.status != "matched" for f in found)
        expected = (MediaStatus.NEEDS_REVIEW if unresolved or m.device == Device.PERSONAL
                    else MediaStatus.SCREENED)
        assert status == expected.value
        with transaction(self.sessions, write=False) as s:
            ids = {left: fid for fid, left in s.execute(
                select(Face.id, Face.left).where(Face.media_id == m.id)).all()}
        assert len(ids) == len(found)
        m.faces = [
            FaceModel(id=ids[f.box[3]], left=f.box[3], status=f.status,
                      pupil=next((k for k, p in self.pupils.items()
                                  if str(p.id) == f.pupil_id), None),
                      candidates=tuple(k for k, p in self.pupils.items()
                                       if any(c == str(p.id) for c, _ in f.candidates)))
            for f in found
        ]
        self._carry_names(m)
        m.status = expected.value
        m.screened_epoch = pending.match_epoch
        m.needs_rescreen = self.gallery_version != pending.gallery_version
        m.cleared = {}

    def _carry_names(self, m: MediaModel) -> None:
        """The model of services.screen.names: a name is applied again to the face where
        it was, unless the engine now sees a pupil other than the one named (or, for a
        correction, the one corrected away from): then it is lost and the medium blocked."""
        for left, (key, previous) in list(m.names.items()):
            i = next(n for n, f in enumerate(m.faces) if f.left == left)
            face = m.faces[i]
            if face.status == "matched" and face.pupil not in (key, previous):
                del m.names[left]
                m.name_lost = True
                self.world.seen["name lost"] += 1
                continue
            m.faces[i] = replace(face, status="matched", pupil=key)
            self.world.seen["name carried"] += 1

    @rule(m=media)
    def screening_fails(self, m: MediaModel) -> None:
        """The engine crashed on it: fail closed."""
        mark_failed(self.sessions, self.settings, m.id, "the engine crashed")
        if m.status in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            m.status = MediaStatus.FAILED.value

    @rule()
    def nightly_recheck(self) -> None:
        """The sweeper that re-decides every live copy (expiry above all)."""
        takedown.recheck_all(self.sessions, self.settings)

    @rule(m=media)
    def screen(self, m: MediaModel) -> None:
        """Claim and save at once: screening with nothing happening in between."""
        self.claim(m)
        if m.claims:
            self.finish_screening(m, len(m.claims) - 1)

    # --- SLT decisions ---

    def _decide(self, m: MediaModel, request: DecisionRequest,
                expected: type[Exception] | None) -> None:
        if expected is None:
            with transaction(self.sessions) as s:
                record_decision(s, self.settings, self.slt, m.id, request)
            return
        # A refused request rolls back, as the API's would.
        with pytest.raises(expected), transaction(self.sessions) as s:
            record_decision(s, self.settings, self.slt, m.id, request)

    def _refusal(self, m: MediaModel, cleared: list[FaceModel]) -> type[Exception] | None:
        if m.status == MediaStatus.PURGED:
            return Gone
        if m.status == MediaStatus.REJECTED:
            return Conflict
        if m.status in (MediaStatus.QUEUED, MediaStatus.SCREENING) or self.is_stale(m):
            return Conflict
        if any(f.status == "matched" or f.candidates for f in cleared):
            return InvalidInput
        return None

    @rule(m=media, channel=st.sampled_from(CHANNELS))
    def approve(self, m: MediaModel, channel: Channel) -> None:
        """SLT approve a medium for a channel (what a personal-device photo needs)."""
        refusal = self._refusal(m, [])
        self._decide(m, DecisionRequest(kind=DecisionKind.APPROVE,
                                        justification="Parents asked for this one",
                                        channels=(channel,)), refusal)
        if refusal is None:
            m.approved.add(channel.value)

    @rule(m=media, channel=st.sampled_from(CHANNELS),
          picks=st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True))
    def clear(self, m: MediaModel, channel: Channel, picks: list[int]) -> None:
        """SLT clear faces nobody could identify (a visiting adult who agreed)."""
        faces = [m.faces[i] for i in picks if i < len(m.faces)]
        if not faces:
            return
        refusal = self._refusal(m, faces)
        self._decide(m, DecisionRequest(kind=DecisionKind.APPROVE,
                                        justification="Visiting coach, agreed in writing",
                                        channels=(channel,),
                                        cleared_faces=tuple(f.id for f in faces)), refusal)
        if refusal is None:
            m.approved.add(channel.value)
            for f in faces:
                m.cleared.setdefault(f.id, set()).add(channel.value)

    @rule(m=media, pick=st.integers(0, 2), key=st.sampled_from(PUPILS))
    def name_face(self, m: MediaModel, pick: int, key: str) -> None:
        """SLT name the pupil a face shows (issue 11): from then on it is that pupil, so
        their consent decides, through the same gate and takedown loop."""
        if pick >= len(m.faces):
            return
        face = m.faces[pick]
        refusal: type[Exception] | None = {MediaStatus.PURGED.value: Gone,
                                           MediaStatus.REJECTED.value: Conflict}.get(m.status)
        if refusal is None and (m.status in (MediaStatus.QUEUED, MediaStatus.SCREENING)
                                or self.is_stale(m)):
            refusal = Conflict
        if (refusal is None and face.status == "matched" and face.pupil == key
                and not m.name_lost):
            refusal = InvalidInput
        pupil_id = self.pupils[key].id
        if refusal is None:
            with transaction(self.sessions) as s:
                identify.identify(s, self.settings, self.slt, m.id, face.id, pupil_id,
                                  "I know this child: it is them")
            m.names[face.left] = (key, face.pupil if face.status == "matched" else None)
            m.name_lost = False
            m.faces[pick] = replace(face, status="matched", pupil=key)
            self.world.seen["face named"] += 1
        else:
            with pytest.raises(refusal), transaction(self.sessions) as s:
                identify.identify(s, self.settings, self.slt, m.id, face.id, pupil_id,
                                  "I know this child: it is them")

    @rule(m=media)
    def reject(self, m: MediaModel) -> None:
        refusal = {MediaStatus.PURGED.value: Gone,
                   MediaStatus.REJECTED.value: Conflict}.get(m.status)
        self._decide(m, DecisionRequest(kind=DecisionKind.REJECT,
                                        justification="Not suitable for the website"),
                     refusal)
        if refusal is None:
            m.status = MediaStatus.REJECTED.value
            m.faces = []
            m.cleared = {}
            self.drop_live(m)

    @rule(m=media)
    def purge(self, m: MediaModel) -> None:
        """The retention run (UTC date, as `purge_medium` documents)."""
        due = m.status != MediaStatus.PURGED and m.retention_until < self.now().date()
        with transaction(self.sessions) as s:
            tombstone = purge_medium(s, self.store, self.settings, m.id)
        assert (tombstone is not None) == due
        if due:
            m.status = MediaStatus.PURGED.value
            m.faces = []
            m.cleared = {}
            m.approved = set()
            self.drop_live(m)

    # --- publishing ---

    @rule(m=media, channel=st.sampled_from(CHANNELS))
    def publish(self, m: MediaModel, channel: Channel) -> None:
        existing = self.live.get((m.id, channel.value))
        verdict = self.verdict(m, channel.value)
        with self.sessions() as s:
            try:
                result = publish(self.sessions, s, self.store, self.settings, self.publisher,
                                 m.id, channel)
            except Gone:
                assert m.status == MediaStatus.PURGED, "Gone for a medium not purged"
                return
            except Blocked as exc:
                self.world.seen["publish blocked"] += 1
                assert existing is None, "blocked although a live copy exists"
                assert verdict != ALLOWED, f"the gate refused an allowed medium: {exc.reasons}"
                return
        if existing is not None:
            assert not result.created and result.publication.id == existing
            return
        self.world.seen["publish created"] += 1
        assert result.created, "a new copy was expected"
        assert verdict == ALLOWED, (
            f"published a medium the gate should refuse ({verdict}): {m!r} on {channel}")
        self.live[(m.id, channel.value)] = result.publication.id

    @rule()
    def publish_everything(self) -> None:
        """The web team's batch run: every medium to every channel, as the gate allows."""
        for m in list(self.all_media):
            for channel in CHANNELS:
                self.publish(m, channel)

    @rule(m=media, channel=st.sampled_from(CHANNELS))
    def unpublish(self, m: MediaModel, channel: Channel) -> None:
        live = (m.id, channel.value) in self.live
        refusal = Gone if m.status == MediaStatus.PURGED else None if live else NotFound
        if refusal is not None:
            with pytest.raises(refusal), transaction(self.sessions) as s:
                unpublish(s, self.settings, self.publisher, m.id, channel)
            return
        with transaction(self.sessions) as s:
            taken = unpublish(s, self.settings, self.publisher, m.id, channel)
            assert [p.id for p in taken] == [self.live[(m.id, channel.value)]]
        self.live.pop((m.id, channel.value), None)

    # --- the invariant ---

    @invariant()
    def live_copies_show_only_faces_allowed_now_or_are_not_served(self) -> None:
        self.world.seen["invariant checks"] += 1
        with transaction(self.sessions, write=False) as s:
            rows = s.execute(select(Publication.id, Publication.media_id, Publication.channel)
                             .where(Publication.withdrawn_at.is_(None))).all()
        per_copy = Counter((media_id, channel) for _, media_id, channel in rows)
        doubled = [key for key, n in per_copy.items() if n > 1]
        assert not doubled, f"more than one live publication per (medium, channel): {doubled}"

        by_id = {m.id: m for m in self.all_media}
        for publication_id, media_id, channel in rows:
            m = by_id[media_id]
            verdict = self.verdict(m, channel)
            try:
                servable(self.sessions, self.settings, publication_id, "jpg")
                served = ALLOWED
            except Held:
                served = HELD
            except Gone:
                served = BLOCKED
            self.world.seen[f"live copy {verdict}"] += 1
            # The safety property.
            assert verdict == ALLOWED or served != ALLOWED, (
                f"publication {publication_id} of {m!r} is served on {channel} although the "
                f"gate must say {verdict} (faces {m.faces}, pupils {self.pupils}, "
                f"today {self.london_today()})")
            # And the gate says no more than it should.
            assert served == verdict, (
                f"publication {publication_id} of {m!r} on {channel}: served as {served}, "
                f"expected {verdict}")
        # A copy the gate refuses for good is down by now: the change took it down, or the
        # serve-time check above did.
        self.live = {(media_id, channel): pid for (media_id, channel), pid in self.live.items()
                     if self.verdict(by_id[media_id], channel) != BLOCKED}
        with transaction(self.sessions, write=False) as s:
            after = {(media_id, channel): pid for pid, media_id, channel in s.execute(
                select(Publication.id, Publication.media_id, Publication.channel)
                .where(Publication.withdrawn_at.is_(None))).all()}
        assert after == self.live, (
            f"live publications differ from the model's: database {after}, model {self.live}")


# --- the tests -------------------------------------------------------------------------


# The enrolment photo every "enrol" step uses (a public adult's, from ../shared/faces).
REFERENCE_PHOTO: list[bytes] = []


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faces: Path) -> Iterator[Any]:
    """Objects in a private filesystem store; jobs recorded instead of sent to Redis (the
    machine drives screening itself); the engine's template of the one reference photo
    computed once, for real, and reused (it is the same photo every time)."""
    store = FilesystemStore(tmp_path / "objects")
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(runtime, "store", lambda: store)
    monkeypatch.setattr(celery_app, "send_task",
                        lambda name, args=None, **_: sent.append((name, args)))
    REFERENCE_PHOTO[:] = [sorted((faces / "enrol" / "obama").iterdir())[0].read_bytes()]
    real = enrol.compute_template
    templates: dict[bytes, Any] = {}

    def computed_once(settings: Any, data: bytes) -> Any:
        if data not in templates:
            templates[data] = real(settings, data)
        return templates[data]

    monkeypatch.setattr(enrol, "compute_template", computed_once)

    def make(url: str) -> None:
        global WORLD
        WORLD = World(Backend(url), store, get_settings())

    yield make
    global WORLD
    if WORLD is not None:
        print(dict(WORLD.seen))
        WORLD.backend.dispose()
    WORLD = None
    clock.reset()
    takedown.decisions.clear()


def runs(examples: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=30, deadline=None,
                    database=None, suppress_health_check=[HealthCheck.too_slow])


def test_live_publications_never_show_a_face_the_gate_would_now_refuse_postgresql(
    database: str, world: Any
) -> None:
    world(database)
    run_state_machine_as_test(GateMachine, settings=runs(40))


def test_live_publications_never_show_a_face_the_gate_would_now_refuse_sqlite(
    tmp_path: Path, world: Any
) -> None:
    from models.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'gate.db'}"
    upgrade(url)
    world(url)
    run_state_machine_as_test(GateMachine, settings=runs(25))
