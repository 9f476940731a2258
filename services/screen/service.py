"""Screen one medium: load it, run the face engine, save the faces.

Three short transactions, so no lock is held while the engine runs: claim (queued or
stale -> screening, noting the gallery it will use), compute, save (under the gate
lock: screening -> screened / needs_review, noting the gallery it used). Screening is
idempotent: a medium already decided against the current register is left alone, and
a second delivery of the same message finds nothing to do.

A screening is tied to the gallery it used. If the gallery changed while the engine
ran, the result is saved but stays stale and the medium is screened again. Saving
re-decides the medium's live publications at once (a held copy comes back or goes).
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.clock import utcnow
from models.db import transaction
from models.orm import Device, Face, Media, MediaKind, MediaStatus
from models.repositories.media import MediaRepository
from models.repositories.organisations import OrganisationRepository
from services.biometrics.gallery import engine_for, gallery
from services.core.audit import SystemActor
from services.core.audit import record as audit
from services.core.config import Settings, get_settings
from services.core.errors import StorageUnavailable, scrub
from services.core.jobs import enqueue
from services.core.uow import lock_for_change
from services.gate import reasons as rc
from services.gate.decide import ConsentFacts, is_stale
from services.screen import names
from services.takedown import service as takedown
from storage.base import ObjectStore
from workers.engine.imaging import decode_image
from workers.engine.types import ScreenedFace

log = logging.getLogger(__name__)

SCREEN_TASK = "consentgate.screen_media"
# A key nothing is stored under: asking for it shows whether the store answers.
PROBE_KEY = "probe/consentgate-health"
CRASHED = "crashed"


@dataclass(frozen=True)
class _Claim:
    org_id: uuid.UUID
    kind: str
    key: str
    device: str
    gallery_version: int
    match_epoch: int


@dataclass(frozen=True)
class _Found:
    faces: list[ScreenedFace]
    frames: int | None = None
    flags: list[dict[str, Any]] | None = None


def _stale(session: Session, media: Media) -> bool:
    epoch = OrganisationRepository(session).epochs(media.org_id)[1]
    return is_stale(media, ConsentFacts(match_epoch={media.org_id: epoch}))


def _claim(sessions: sessionmaker[Session], media_id: uuid.UUID,
           settings: Settings | None = None) -> _Claim | str | None:
    """A _Claim to screen it, CRASHED if its deliveries have all crashed, or None."""
    settings = settings or get_settings()
    with transaction(sessions) as session:
        media = MediaRepository(session).get_for_screening(media_id)
        if media is None:
            return None
        rescreen = media.status in (MediaStatus.SCREENED, MediaStatus.NEEDS_REVIEW) and _stale(
            session, media)
        if media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING) and not rescreen:
            return None
        if (media.status == MediaStatus.QUEUED and media.retry_at is not None
                and media.retry_at > utcnow()):
            # Waiting out a transient error; the sweep sends it when its time comes.
            return None
        if media.status in (MediaStatus.QUEUED, MediaStatus.SCREENING) and (
                media.attempts >= settings.max_attempts):
            crashed = True
        else:
            crashed = False
        if crashed:
            return CRASHED
        media.status = MediaStatus.SCREENING.value
        media.status_changed_at = utcnow()
        media.retry_at = None
        # Counted before the engine runs, durably: a delivery that kills the worker
        # leaves it counted; one that ends (saved, or waiting out an outage) takes it back.
        media.attempts += 1
        orgs = OrganisationRepository(session)
        return _Claim(
            org_id=media.org_id,
            kind=media.kind,
            key=media.original_key,
            device=media.device,
            gallery_version=orgs.gallery_version(media.org_id),
            match_epoch=orgs.epochs(media.org_id)[1],
        )


def screen(
    sessions: sessionmaker[Session], store: ObjectStore, settings: Settings, media_id: uuid.UUID
) -> str | None:
    """Screen the medium; return its new status, or None if there was nothing to do."""
    claim = _claim(sessions, media_id, settings)
    if claim is CRASHED:
        # Every earlier delivery began and never ended: the file kills the worker.
        return fail_if_crashed(sessions, settings, media_id)
    if not isinstance(claim, _Claim):
        return None
    with transaction(sessions, write=False) as session:
        faces_gallery = gallery(session, settings, claim.org_id, claim.gallery_version)
    engine = engine_for(settings)
    if claim.kind == MediaKind.IMAGE:
        rgb = decode_image(store.get(claim.key), max_pixels=settings.max_image_pixels)
        found = _Found(engine.screen_image(rgb, faces_gallery))
    else:
        with tempfile.TemporaryDirectory(prefix="cg-screen-") as tmp:
            path = Path(tmp) / "video"
            store.download(claim.key, path)
            video = engine.screen_video(path, faces_gallery)
        flags = None
        if video.truncated:
            flags = [{"code": rc.VIDEO_TRUNCATED, "frames": video.frames_decoded,
                      "claimed": video.frames_claimed}]
        found = _Found(video.faces, frames=video.frames_decoded, flags=flags)
    return _save(sessions, settings, media_id, claim, found)


def _save(sessions: sessionmaker[Session], settings: Settings, media_id: uuid.UUID,
          claim: _Claim, found: _Found) -> str | None:
    with transaction(sessions) as session:
        lock_for_change(session, claim.org_id)
        repo = MediaRepository(session)
        media = repo.get_for_screening(media_id)
        if media is None or media.status != MediaStatus.SCREENING:
            return None
        named = names.remember(session, media)
        repo.replace_faces(media, [
            Face(
                media_id=media.id,
                frame=f.frame,
                top=f.box[0], right=f.box[1], bottom=f.box[2], left=f.box[3],
                pupil_id=uuid.UUID(f.pupil_id) if f.pupil_id else None,
                distance=f.distance,
                match_status=f.status,
                candidates=[{"pupil_id": p, "distance": round(d, 4)}
                            for p, d in f.candidates] or None,
                track=f.track,
            )
            for f in found.faces
        ])
        unresolved = sum(1 for f in found.faces if f.status != "matched")
        flagged = unresolved > 0 or claim.device == Device.PERSONAL or bool(found.flags)
        # Flags from the upload (photography session) stand whatever the faces show.
        flagged = flagged or bool(media.upload_flags)
        status = MediaStatus.NEEDS_REVIEW if flagged else MediaStatus.SCREENED
        orgs = OrganisationRepository(session)
        # Seconds since the claim set status_changed_at: the screening time (metrics).
        seconds = round((utcnow() - media.status_changed_at).total_seconds(), 3)
        media.status = status.value
        media.status_changed_at = media.screened_at = utcnow()
        media.error = None
        media.attempts = 0
        media.failure_code = media.failure_data = None
        media.transient_since = media.retry_at = None
        media.screened_match_epoch = claim.match_epoch
        media.screened_gallery_version = claim.gallery_version
        media.frames_screened = found.frames
        media.screen_flags = found.flags
        # The gallery changed while the engine ran (an erasure, a leaver): this result
        # may rest on a template that is gone. Keep it stale and look again.
        media.needs_rescreen = orgs.gallery_version(claim.org_id) != claim.gallery_version
        session.flush()
        # SLT's names carried over to the new faces (or marked lost, a flag) before
        # anything is decided: under this lock, in this transaction.
        names.reapply(session, media, named)
        audit(
            session, SystemActor("screening", claim.org_id), "media.screened",
            f"media:{media_id}",
            {"status": status.value, "faces": len(found.faces), "unresolved": unresolved,
             "frames": found.frames, "flags": [f["code"] for f in found.flags or []],
             "seconds": seconds},
        )
        takedown.redecide(session, settings, SystemActor("screening", claim.org_id),
                          claim.org_id, [media], trigger="screened again")
        if _stale(session, media):
            enqueue(session, SCREEN_TASK, str(media_id))
        return status.value


def mark_failed(sessions: sessionmaker[Session], settings: Settings, media_id: uuid.UUID,
                error: str, *, code: str = rc.SCREENING_ERROR,
                data: dict[str, Any] | None = None) -> None:
    """Fail closed: a medium whose screening failed is blocked and goes to SLT review.
    `code` and `data` say why (words are made at the edge); `error` is for the logs."""
    with transaction(sessions) as session:
        org_id = MediaRepository(session).org_of(media_id)
        if org_id is None:
            return
        lock_for_change(session, org_id)
        media = MediaRepository(session).get_for_screening(media_id)
        if media is None or media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING):
            return
        _fail(session, settings, media, error, code, data)


def _fail(session: Session, settings: Settings, media: Media, error: str, code: str,
          data: dict[str, Any] | None) -> None:
    """The caller holds the gate lock (or takes none yet: taken here)."""
    lock_for_change(session, media.org_id)
    media.status = MediaStatus.FAILED.value
    # `media.error` is shown to people: hosts, buckets and keys go to the log only.
    log.warning("screening of media %s failed: %s", media.id, error)
    media.error = scrub(error, limit=2000)
    media.failure_code = code
    media.failure_data = data
    media.retry_at = None
    media.status_changed_at = utcnow()
    session.flush()
    audit(session, SystemActor("screening", media.org_id), "media.screening_failed",
          f"media:{media.id}", {"error": media.error, "code": code, **(data or {})})
    takedown.redecide(session, settings, SystemActor("screening", media.org_id),
                      media.org_id, [media], trigger="screening failed")


def fail_if_crashed(sessions: sessionmaker[Session], settings: Settings,
                    media_id: uuid.UUID) -> str | None:
    """Fail a medium waiting for screening whose last `max_attempts` deliveries all began
    and never ended (a file that kills the worker), so it is not sent again for ever.
    Returns "failed" if it did."""
    with transaction(sessions) as session:
        org_id = MediaRepository(session).org_of(media_id)
        if org_id is None:
            return None
        lock_for_change(session, org_id)
        media = MediaRepository(session).get_for_screening(media_id)
        if (media is None or media.status not in (MediaStatus.QUEUED, MediaStatus.SCREENING)
                or media.attempts < settings.max_attempts):
            return None
        attempts = media.attempts
        log.error("media %s crashed the screening %d times; failing it", media_id, attempts)
        _fail(session, settings, media, f"screening crashed {attempts} times",
              rc.SCREENING_CRASHED, {"attempts": attempts})
        return MediaStatus.FAILED.value


def retry_wait_s(settings: Settings, outage_s: float) -> float | None:
    """Seconds to wait before trying again, `outage_s` into a run of transient errors;
    None once the run has lasted the retry horizon (then the medium fails, transiently).
    Each wait is as long as the outage so far, so the waits double (15, 15, 30, 60 ...)."""
    if outage_s >= settings.retry_horizon_s:
        return None
    return min(max(outage_s, settings.retry_backoff_s), settings.retry_max_backoff_s)


def retry_schedule(settings: Settings) -> list[float]:
    """The waits a medium goes through in an outage that never ends, until it fails:
    their sum is how long transient errors are retried (>= retry_horizon_s)."""
    waits: list[float] = []
    elapsed = 0.0
    while (wait := retry_wait_s(settings, elapsed)) is not None:
        waits.append(wait)
        elapsed += wait
    return waits


def defer(sessions: sessionmaker[Session], settings: Settings, media_id: uuid.UUID,
          code: str, error: str) -> float | None:
    """A transient error (storage, database) stopped this screening: put the medium back
    in the queue to be tried again after a wait (the sweep sends it then), and give back
    the attempt it counted. Once the errors have lasted the retry horizon it fails with
    `code` instead, marked transient, and is screened again when the store answers
    (requeue_transient_failures). Returns the wait, or None if it failed or was not
    being screened."""
    with transaction(sessions) as session:
        org_id = MediaRepository(session).org_of(media_id)
        if org_id is None:
            return None
        lock_for_change(session, org_id)
        media = MediaRepository(session).get_for_screening(media_id)
        if media is None or media.status != MediaStatus.SCREENING:
            return None
        now = utcnow()
        since = media.transient_since or now
        media.transient_since = since
        media.attempts = max(0, media.attempts - 1)
        wait = retry_wait_s(settings, (now - since).total_seconds())
        if wait is None:
            _fail(session, settings, media, error, code,
                  {"transient": True, "since": since.isoformat()})
            return None
        media.status = MediaStatus.QUEUED.value
        media.status_changed_at = now
        media.retry_at = now + timedelta(seconds=wait)
        log.warning("media %s: %s; trying again in %.0f s", media_id, error, wait)
        return wait


def requeue_transient_failures(sessions: sessionmaker[Session], store: ObjectStore,
                               settings: Settings) -> int:
    """If the store answers, queue again every medium that failed for a transient reason
    (an outage outlasted the retries): failed is fail-closed, queued is too."""
    with transaction(sessions, write=False) as session:
        ids = MediaRepository(session).failed_with(rc.TRANSIENT_FAILURES)
    if not ids:
        return 0  # nothing waits on the store: do not spend a worker on a hung one
    try:
        store.exists(PROBE_KEY)
    except StorageUnavailable as exc:
        log.info("store still unavailable; transient failures stay failed: %s", exc)
        return 0
    for media_id in ids:
        _requeue(sessions, media_id)
    if ids:
        log.warning("re-queued %d media that failed while the store was unavailable", len(ids))
    return len(ids)


def _requeue(sessions: sessionmaker[Session], media_id: uuid.UUID) -> None:
    with transaction(sessions) as session:
        repo = MediaRepository(session)
        org_id = repo.org_of(media_id)
        if org_id is None:
            return
        lock_for_change(session, org_id)
        media = repo.get_for_screening(media_id)
        if (media is None or media.status != MediaStatus.FAILED
                or media.failure_code not in rc.TRANSIENT_FAILURES):
            return
        media.status = MediaStatus.QUEUED.value
        media.status_changed_at = utcnow()
        media.error = media.failure_code = media.failure_data = None
        media.transient_since = media.retry_at = None
        media.attempts = 0
        session.flush()
        audit(session, SystemActor("screening", org_id), "media.requeued",
              f"media:{media_id}", {"why": "the store answers again"})
        enqueue(session, SCREEN_TASK, str(media_id))


def dispatch_rescreens(sessions: sessionmaker[Session], org_id: uuid.UUID | None = None) -> int:
    """Queue every stale medium for screening, in priority order: media with a live
    publication first, then the review queue, then everything else within retention."""
    with transaction(sessions) as session:
        orgs = OrganisationRepository(session)
        org_ids = [org_id] if org_id is not None else [o.id for o in orgs.list_all()]
        queued = 0
        for oid in org_ids:
            for media_id in MediaRepository(session).stale(oid, orgs.epochs(oid)[1]):
                enqueue(session, SCREEN_TASK, str(media_id))
                queued += 1
    if queued:
        log.info("queued %d stale media for screening again", queued)
    return queued


@dataclass(frozen=True)
class RescreenProgress:
    stale: int
    screened_with_faces: int


def rescreen_progress(session: Session, org_id: uuid.UUID) -> RescreenProgress:
    repo = MediaRepository(session)
    epoch = OrganisationRepository(session).epochs(org_id)[1]
    return RescreenProgress(stale=len(repo.stale(org_id, epoch)),
                            screened_with_faces=repo.count_screened_with_faces(org_id))


def sweep_stuck(sessions: sessionmaker[Session], settings: Settings,
                now: datetime | None = None) -> int:
    """Re-enqueue media left queued too long (lost message, broker down at commit),
    queued whose retry time has come, or screening past the time limit (killed worker);
    fail those whose deliveries all crashed; queue every stale medium."""
    now = now or utcnow()
    # A medium screening within its time limit (plus the grace in which the worker
    # hard-kills it) is being worked on, not stuck. With the beat interval this bounds
    # redelivery at time limit + grace + interval (docs/safety.md, Recovery).
    screening_cutoff = now - timedelta(
        seconds=settings.screening_time_limit_s + settings.screening_grace_s)
    with transaction(sessions) as session:
        repo = MediaRepository(session)
        stuck = repo.due_for_screening(now - timedelta(seconds=settings.stuck_after_s),
                                       screening_cutoff, now)
        crashed: list[uuid.UUID] = []
        for media_id in stuck:
            media = repo.get_for_screening(media_id)
            if media is None:
                continue
            if media.attempts >= settings.max_attempts:
                crashed.append(media_id)
                continue
            # Touch the row so the next sweep waits a full interval before re-sending.
            media.status_changed_at = utcnow()
            media.retry_at = None
            enqueue(session, SCREEN_TASK, str(media_id))
    for media_id in crashed:
        fail_if_crashed(sessions, settings, media_id)
    if stuck:
        log.warning("re-enqueued %d stuck media", len(stuck) - len(crashed))
    dispatch_rescreens(sessions)
    return len(stuck)
