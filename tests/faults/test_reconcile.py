"""No orphaned objects (issue 12): intents, the intent sweep and `storage reconcile`, on
the embedded backend (SQLite, filesystem store) and on PostgreSQL with a versioned S3
bucket (moto), through the real upload service."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import session_factory, transaction
from models.migrate import upgrade
from models.orm import Device, Media, PendingObject, Role
from models.repositories.organisations import OrganisationRepository
from services.core import intents
from services.core.auth import Principal, authenticate, issue_token
from services.core.config import get_settings
from services.core.errors import TransientError
from services.upload.service import UploadForm, accept_upload
from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from storage.minio_store import MinioStore
from tests.conftest import TEST_DATABASE_URL
from tests.safety.support import POLICY
from tests.support import run_cli


@dataclass
class Backend:
    name: str
    sessions: sessionmaker[Session]
    store: ObjectStore
    versioned: bool


@pytest.fixture(params=["embedded", "postgresql+s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        url = f"sqlite:///{tmp_path / 'consentgate.db'}"
        upgrade(url)
        yield Backend("embedded", session_factory(url), FilesystemStore(tmp_path / "objects"),
                      versioned=False)
        return
    request.getfixturevalue("clean_db")
    store: MinioStore = request.getfixturevalue("minio_store")
    yield Backend("postgresql+s3", session_factory(TEST_DATABASE_URL), store, versioned=True)


def _staff(sessions: sessionmaker[Session]) -> Principal:
    slug = f"rec-{uuid.uuid4().hex[:8]}"
    with transaction(sessions) as session:
        org = OrganisationRepository(session).create(slug, "Reconcile school",
                                                     POLICY.model_dump(mode="json"))
        secret = issue_token(session, org, Role.STAFF, "staff")
    with sessions() as session:
        return authenticate(session, secret)


def _upload(b: Backend, staff: Principal, photo: bytes) -> Media:
    with transaction(b.sessions) as session:
        return accept_upload(session, b.store, get_settings(), staff, io.BytesIO(photo),
                             UploadForm(event="Play", purpose="publicity", device=Device.SCHOOL,
                                        captured_on=None)).media


def _pending(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(PendingObject.key)))


def test_an_upload_links_its_intent_and_reconcile_removes_only_what_no_row_owns(
        backend: Backend, faces: Path) -> None:
    b, store = backend, backend.store
    staff = _staff(b.sessions)
    photo = (faces / "events" / "obama1.jpg").read_bytes()
    media = _upload(b, staff, photo)
    assert _pending(b.sessions) == []  # the row's commit cleared its intent
    org = staff.org_id

    # Written and never recorded (a crash between the write and the commit).
    stray = f"originals/{org}/{uuid.uuid4()}.jpg"
    store.put(stray, photo)
    # A medium whose row is gone but whose file (on S3: old versions too) was left.
    gone = f"originals/{org}/{uuid.uuid4()}.jpg"
    store.put(gone, photo)
    store.put(gone, photo + b"v2")
    # A derived file of a live medium (kept) and of a medium that does not exist.
    preview = f"derivatives/{org}/{media.id}/preview.webm"
    store.put(preview, b"webm")
    dangling = f"derivatives/{org}/{uuid.uuid4()}/preview.webm"
    store.put(dangling, b"webm")
    # An upload in flight: intent committed, object written, row not yet committed.
    in_flight = f"originals/{org}/{uuid.uuid4()}.jpg"
    intents.record(in_flight, session=b.sessions())
    store.put(in_flight, photo)
    versions_before = store.count_versions("")

    settings = get_settings()
    tracked: list[str] = []

    def track(items: list[str], label: str) -> list[str]:
        tracked.append(label)
        return items

    dry = intents.reconcile(b.sessions, store, settings, dry_run=True, track=track)
    assert sorted(dry.orphans) == sorted([stray, gone, dangling])
    assert store.count_versions("") == versions_before  # a dry run deletes nothing

    report = intents.reconcile(b.sessions, store, settings, track=track)
    assert sorted(report.orphans) == sorted([stray, gone, dangling])
    assert tracked == ["removing orphans"]
    for key in (stray, gone, dangling):
        assert store.count_versions(key) == 0, key  # every version, not only the current
    for key in (media.original_key, preview, in_flight):
        assert store.exists(key), key
    assert store.count_versions("") == versions_before - (4 if b.versioned else 3)

    # The in-flight upload never commits: after the grace period the sweep takes it.
    later = utcnow() + timedelta(seconds=settings.intent_grace_s + 1)
    assert intents.sweep(b.sessions, store, settings).deleted == []
    assert intents.sweep(b.sessions, store, settings, now=later).deleted == [in_flight]
    assert store.count_versions(in_flight) == 0
    assert _pending(b.sessions) == []
    assert store.exists(media.original_key)


def test_a_row_never_points_at_an_object_the_sweep_took(backend: Backend) -> None:
    """An owner that commits after the sweep removed its intent (and its object) is
    refused with a transient error, so it rolls back instead of keeping a dead key."""
    b = backend
    key = f"originals/{uuid.uuid4()}/{uuid.uuid4()}.jpg"
    intents.record(key, session=b.sessions())
    b.store.put(key, b"late bytes")
    later = utcnow() + timedelta(seconds=get_settings().intent_grace_s + 1)
    assert intents.sweep(b.sessions, b.store, get_settings(), now=later).deleted == [key]
    with pytest.raises(TransientError), transaction(b.sessions) as session:
        intents.link(session, key)
    assert b.store.count_versions(key) == 0


def test_storage_reconcile_command_lists_then_removes(clean_db: None) -> None:
    from services.core import runtime

    store = runtime.store()
    stray = f"originals/{uuid.uuid4()}/{uuid.uuid4()}.jpg"
    store.put(stray, b"no row")
    store.put(stray, b"no row, second version")
    out = run_cli("storage", "reconcile", "--dry-run")
    assert f"would delete\t{stray}" in out
    assert "1 object(s) with no row; 0 deleted" in out
    assert store.count_versions(stray) == 2
    out = run_cli("storage", "reconcile")
    assert f"deleted\t{stray}" in out
    assert "1 object(s) with no row; 1 deleted" in out
    assert store.count_versions(stray) == 0
