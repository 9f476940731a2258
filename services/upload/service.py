"""Accept one upload: check it, store it, record it, and queue it for screening.

Bad input is refused before anything is written. Once the object is stored,
a rollback deletes it again, so a failed upload leaves no row and no object.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import on_rollback
from models.orm import Device, Media, MediaStatus, Role
from models.repositories.media import MediaRepository
from services.core import intents
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import InvalidInput, TooLarge
from services.core.jobs import enqueue
from services.core.policy import policy_of
from storage.base import ObjectStore
from workers.engine.imaging import ImageInfo, sniff, validate_upload

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadForm:
    event: str
    purpose: str
    device: Device
    captured_on: date | None


@dataclass(frozen=True)
class UploadResult:
    media: Media
    notices: list[str]


def _spool(stream: BinaryIO, dest: BinaryIO, limit: int) -> tuple[int, str]:
    """Copy at most `limit` bytes, hashing as we go; TooLarge past the limit."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file is larger than the {limit // (1024 * 1024)} MiB limit",
                           limit_bytes=limit)
        digest.update(chunk)
        dest.write(chunk)
    return size, digest.hexdigest()


def accept_upload(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    stream: BinaryIO,
    form: UploadForm,
) -> UploadResult:
    principal.require(Role.STAFF, Role.SLT, Role.ADMIN)
    if not form.event.strip() or not form.purpose.strip():
        raise InvalidInput("event and purpose are required: say what the photo is for")
    with tempfile.TemporaryDirectory(prefix="cg-upload-") as tmp:
        path = Path(tmp) / "upload"
        with path.open("wb") as fh:
            size, sha256 = _spool(stream, fh, settings.max_upload_bytes)
        if size == 0:
            raise InvalidInput("the file is empty")
        with path.open("rb") as fh:
            sniffed = sniff(fh.read(64))
        info = validate_upload(path, sniffed, max_pixels=settings.max_image_pixels)

        policy = policy_of(principal.org.policy)
        captured_on = form.captured_on
        make = model = None
        width, height = info.width, info.height
        if isinstance(info, ImageInfo):
            make, model = info.camera_make, info.camera_model
            if captured_on is None and info.captured_at is not None:
                captured_on = info.captured_at.date()
        start = captured_on or utcnow().date()
        media_id = uuid.uuid4()
        key = f"originals/{principal.org_id}/{media_id}{sniffed.extension}"
        media = MediaRepository(session).add(
            Media(
                id=media_id,
                org_id=principal.org_id,
                uploaded_by=principal.token_id,
                uploader_name=principal.name,
                event=form.event.strip(),
                purpose=form.purpose.strip(),
                captured_on=captured_on,
                device=form.device.value,
                camera_make=make,
                camera_model=model,
                sha256=sha256,
                size_bytes=size,
                kind=sniffed.kind.value,
                mime=sniffed.mime,
                width=width,
                height=height,
                status=MediaStatus.QUEUED.value,
                attempts=0,
                retention_until=start + timedelta(days=policy.retention_for(form.purpose)),
                original_key=key,
                created_at=utcnow(),
                status_changed_at=utcnow(),
            )
        )
        # Intent first (committed on its own), so an object the store lands late, after
        # this request gave up, is found and deleted by the intent sweep.
        intents.record(key, session=session)
        with path.open("rb") as fh:
            store.put(key, fh, length=size, content_type=sniffed.mime)
        on_rollback(session, lambda: store.delete(key))
        intents.link(session, key)
    notices: list[str] = []
    if form.device == Device.PERSONAL:
        notices.append(
            "This was taken on a personal device. It has been uploaded safely; now delete the "
            "original from the device (and from any cloud backup of it). SLT will review it."
        )
    if media.retention_until < utcnow().date():
        notices.append(
            f"This was taken on {media.captured_on}, longer ago than your retention policy "
            "allows; it will be deleted at the next retention purge."
        )
    audit(
        session, principal, "media.uploaded", f"media:{media.id}",
        {"kind": sniffed.kind.value, "sha256": sha256, "size": size, "device": form.device.value,
         "event": media.event, "purpose": media.purpose},
    )
    enqueue(session, "consentgate.screen_media", str(media.id))
    return UploadResult(media=media, notices=notices)

