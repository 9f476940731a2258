"""Race tests: the publication gate holds when a publish and a change that ends its
consent run at the same moment, on real PostgreSQL and on the embedded SQLite.

Each test makes one school and one pupil (consent granted), then for every round a new
screened medium whose one face is matched to the pupil, and releases two real threads
together with a barrier: a publish (`services.publish.service.publish`, both of its
phases, exactly as the API runs it) and a change that takes consent away (withdrawal,
SLT reject, retention purge, leaving, biometric withdrawal) or a second publish. The
point where the two cross moves from round to round (a small seeded delay on one side,
up to about the length of a publish), so every interleaving is met: the change before
the publish's first look, between its first look and its write unit (the copy already
made), and after it committed.

Either side may win. After every round the committed state is checked
(`tests.safety.support.check_gate`): no live publication violates the invariant, by
the gate's own decision and by a reading of the rows that does not use the gate's code;
every publication that is down answers 410 at its public URL; no public copy is left
without its row. Publish errors must be the expected refusals, the change must succeed,
and neither may hang (a deadlock fails the round).

Set CONSENTGATE_RACE_ROUNDS to change the number of rounds (default 200).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import make_engine, transaction
from models.migrate import upgrade
from models.orm import (
    BiometricStatus,
    ConsentStatus,
    DecisionKind,
    Media,
    MediaStatus,
    Publication,
)
from services.core.config import get_settings
from services.lifecycle.retention import purge_medium
from services.publish.service import PublishResult, publish, unpublish
from services.register.service import record_biometric, set_active, set_publication_consent
from services.review.decisions import DecisionRequest, record_decision
from tests.safety.support import (
    CHANNEL,
    School,
    Side,
    WatchedStore,
    assert_gate_holds,
    assert_refusal_or_success,
    assert_succeeded,
    make_school,
    new_medium,
    race,
)

ROUNDS = int(os.environ.get("CONSENTGATE_RACE_ROUNDS", "200"))
# The longest delay put on one side (see Crossing).
MAX_DELAY_S = 0.25


@pytest.fixture(params=["postgresql", "sqlite"])
def school(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[School]:
    """A school on the backend under test: the suite's PostgreSQL (tables emptied after
    the test) or a migrated SQLite file, with a filesystem object store."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("database")
        request.getfixturevalue("clean_db")
    else:
        # Outbox deletions after commit use the process store, which app_env points at.
        request.getfixturevalue("app_env")
        url = f"sqlite:///{tmp_path / 'consentgate.db'}"
        upgrade(url)
    engine = make_engine(url)
    sessions: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        yield make_school(sessions, WatchedStore(tmp_path / "objects"), get_settings())
    finally:
        engine.dispose()


# --- the two sides ------------------------------------------------------------------


def publish_once(school: School, media_id: uuid.UUID) -> PublishResult:
    """POST /media/{id}/publications: a read-only request session for the first look,
    the publish's own write unit for the second."""
    read = school.sessions()
    try:
        result = publish(school.sessions, read, school.store, school.settings,
                         school.publisher, media_id, CHANNEL)
        read.commit()
        return result
    finally:
        read.close()


def in_write_unit(school: School, change: Callable[[Session], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with transaction(school.sessions) as session:
            return change(session)
    return run


def withdraw_consent(school: School, status: ConsentStatus) -> Callable[[Session], Any]:
    def change(session: Session) -> Any:
        return set_publication_consent(session, school.settings, school.slt, school.pupil,
                                       CHANNEL, status=status, given_by="guardian",
                                       evidence_ref=f"letter: {status.value}",
                                       expires_on=None)
    return change


def biometric(school: School, status: BiometricStatus) -> Callable[[Session], Any]:
    def change(session: Session) -> Any:
        return record_biometric(session, school.settings, school.slt, school.pupil,
                                status=status, by="parent",
                                evidence_ref=f"letter: {status.value}")
    return change


def active(school: School, flag: bool) -> Callable[[Session], Any]:
    def change(session: Session) -> Any:
        return set_active(session, school.settings, school.slt, school.pupil, flag)
    return change


# --- rounds -------------------------------------------------------------------------


@dataclass
class Tally:
    """How the rounds went: which side won, and where a losing publish was stopped."""

    rounds: int = 0
    published: int = 0
    refused_before_copy: int = 0
    refused_after_copy: int = 0
    seconds: float = 0.0
    publish_s: float = 0.0
    change_s: float = 0.0

    def line(self, name: str) -> str:
        per_round = 1000 / max(self.rounds, 1)
        return (f"{name}: {self.rounds} rounds in {self.seconds:.1f}s; publish won "
                f"{self.published}, refused before its copy {self.refused_before_copy}, "
                f"refused after its copy (re-decided under the lock) "
                f"{self.refused_after_copy}; mean publish {self.publish_s * per_round:.1f} "
                f"ms, change {self.change_s * per_round:.1f} ms")


class Crossing:
    """Where the two sides cross: on even rounds the change starts up to one publish
    later than the publish, on odd rounds the publish up to half a publish later than the
    change (so the change lands before the first look, during the copy, or after the
    commit). "One publish" is learnt from the rounds run so far (median publish time,
    lock waits included, so it errs long)."""

    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)
        self.times: list[float] = []

    def delays(self, n: int) -> tuple[float, float]:
        recent = sorted(self.times[-21:])
        window = min(MAX_DELAY_S, 1.2 * recent[len(recent) // 2]) if recent else 0.03
        if n % 2 == 0:
            return 0.0, self.rng.uniform(0, window)
        return self.rng.uniform(0, window / 2), 0.0

    def publish_took(self, seconds: float) -> None:
        self.times.append(seconds)


def run_rounds(school: School, name: str, *, change: Callable[[uuid.UUID], Any],
               restore: Callable[[Session], Any] | None = None,
               retention_past: bool = False,
               after: Callable[[int, uuid.UUID], None] | None = None) -> Tally:
    """ROUNDS rounds of publish against `change(media_id)`, `restore` giving the pupil
    back their consent in the write unit that makes each round's medium."""
    tally = Tally()
    crossing = Crossing(name)
    started = time.perf_counter()
    retention = utcnow().date() - timedelta(days=1) if retention_past else None
    for n in range(ROUNDS):
        media_id = new_medium(school, before=restore, retention_until=retention)
        school.store.take_count()
        publishing, changing = race(partial(publish_once, school, media_id),
                                    partial(change, media_id), delays=crossing.delays(n))
        when = f"{name}, round {n}"
        assert_refusal_or_success(publishing, f"{when}: the publish")
        assert_succeeded(changing, f"{when}: the change")
        copies = school.store.take_count()
        tally.publish_s += publishing.seconds
        crossing.publish_took(publishing.seconds)
        tally.change_s += changing.seconds
        if publishing.error is None:
            tally.published += 1
        elif copies:
            tally.refused_after_copy += 1
        else:
            tally.refused_before_copy += 1
        assert_gate_holds(school, [media_id], when)
        if after is not None:
            after(n, media_id)
        tally.rounds += 1
    tally.seconds = time.perf_counter() - started
    print("\n" + tally.line(name))
    return tally


def live_copies(school: School, media_id: uuid.UUID) -> int:
    with transaction(school.sessions, write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Publication).where(
            Publication.media_id == media_id, Publication.withdrawn_at.is_(None))) or 0)


def status_of(school: School, media_id: uuid.UUID) -> str | None:
    with transaction(school.sessions, write=False) as session:
        return session.scalar(select(Media.status).where(Media.id == media_id))


# --- the races ----------------------------------------------------------------------


def test_a_consent_withdrawal_racing_a_publish_never_leaves_a_live_copy(
        school: School) -> None:
    """Publish against the guardian withdrawing website consent: whichever commits
    first, the copy is refused or taken down, and its URL answers 410."""
    withdraw = withdraw_consent(school, ConsentStatus.WITHDRAWN)
    run_rounds(school, "withdrawal", change=lambda _m: in_write_unit(school, withdraw)(),
               restore=withdraw_consent(school, ConsentStatus.GRANTED))


def test_an_slt_reject_racing_a_publish_never_leaves_a_live_copy(school: School) -> None:
    """Publish against SLT rejecting the medium: the rejected medium has no live copy,
    whichever commits first."""

    def reject(media_id: uuid.UUID) -> Any:
        request = DecisionRequest(kind=DecisionKind.REJECT,
                                  justification="Not suitable for the website at all")
        return in_write_unit(school, lambda s: record_decision(
            s, school.settings, school.slt, media_id, request))()

    def rejected(_n: int, media_id: uuid.UUID) -> None:
        assert status_of(school, media_id) == MediaStatus.REJECTED

    run_rounds(school, "reject", change=reject, after=rejected)


def test_a_retention_purge_racing_a_publish_never_leaves_a_live_copy(school: School) -> None:
    """Publish against the retention purge of a medium past its retention date: the
    purged medium has no live copy and no stored public copy, whichever commits first."""

    def purge(media_id: uuid.UUID) -> Any:
        tombstone = in_write_unit(school, lambda s: purge_medium(
            s, school.store, school.settings, media_id))()
        assert tombstone is not None, "the purge found the medium not due"
        return tombstone

    def purged(_n: int, media_id: uuid.UUID) -> None:
        assert status_of(school, media_id) == MediaStatus.PURGED
        assert not any(school.store.list_keys(f"originals/{school.org_id}/{media_id}.jpg"))

    run_rounds(school, "purge", change=purge, retention_past=True, after=purged)


def test_a_pupil_leaving_racing_a_publish_never_leaves_a_live_copy(school: School) -> None:
    """Publish against the pupil being marked as left: a leaver is never shown,
    whichever commits first."""
    run_rounds(school, "leaver",
               change=lambda _m: in_write_unit(school, active(school, False))(),
               restore=active(school, True))


def test_a_biometric_withdrawal_racing_a_publish_never_leaves_a_live_copy(
        school: School) -> None:
    """Publish against the parent withdrawing consent to face matching: a match made
    under consent that has ended never keeps a copy up, whichever commits first."""
    run_rounds(school, "biometric withdrawal",
               change=lambda _m: in_write_unit(
                   school, biometric(school, BiometricStatus.WITHDRAWN))(),
               restore=biometric(school, BiometricStatus.GRANTED))


def test_two_publishes_of_one_medium_make_at_most_one_live_copy_and_unpublish_ends_it(
        school: School) -> None:
    """Two publishes of the same medium to the same channel at once: at most one live
    copy exists (the other request gets that one, or a conflict), every copy returned is
    the live one, and one unpublish afterwards leaves none live, its URL answering 410."""
    tally = Tally()
    crossing = Crossing("double publish")
    given_existing = conflicts = 0
    started = time.perf_counter()
    for n in range(ROUNDS):
        media_id = new_medium(school)
        school.store.take_count()
        sides: tuple[Side, Side] = race(partial(publish_once, school, media_id),
                                        partial(publish_once, school, media_id),
                                        delays=crossing.delays(n))
        crossing.publish_took(sides[0].seconds)
        when = f"double publish, round {n}"
        for k, side in enumerate(sides):
            assert_refusal_or_success(side, f"{when}: publish {k}")
        assert live_copies(school, media_id) <= 1, f"{when}: two live copies"
        assert_gate_holds(school, [media_id], f"{when}, before unpublishing")
        with transaction(school.sessions, write=False) as session:
            live = session.scalars(select(Publication.id).where(
                Publication.media_id == media_id, Publication.withdrawn_at.is_(None))).all()
        returned = {side.value.publication.id for side in sides if side.error is None}
        assert returned <= set(live), f"{when}: a request got {returned}, live is {live}"
        created = [side for side in sides if side.error is None and side.value.created]
        assert len(created) <= 1, f"{when}: both requests say they created the copy"
        tally.published += len(created)
        given_existing += sum(1 for side in sides if side.error is None
                              and not side.value.created)
        conflicts += sum(1 for side in sides if side.error is not None)
        if live:
            with transaction(school.sessions) as session:
                unpublish(session, school.settings, school.publisher, media_id, CHANNEL)
        assert live_copies(school, media_id) == 0, f"{when}: live after unpublishing"
        assert_gate_holds(school, [media_id], f"{when}, after unpublishing")
        tally.rounds += 1
    tally.seconds = time.perf_counter() - started
    print(f"\ndouble publish: {tally.rounds} rounds in {tally.seconds:.1f}s; a copy made in "
          f"{tally.published}, the other request given it {given_existing} times, "
          f"refused {conflicts} times")
