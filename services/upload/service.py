"""Accept one upload: check it, store it, record it, and queue it for screening.

Bad input is refused before anything is written. Once the object is stored,
a rollback deletes it again, so a failed upload leaves no row and no object.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import BinaryIO

from PIL import Image
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.db import on_rollback
from models.orm import Device, Media, MediaStatus, Role
from models.repositories.media import MediaRepository
from models.repositories.sessions import PhotoSessionRepository
from services.core import intents, validate
from services.core.audit import record as audit
from services.core.auth import Principal
from services.core.clock import local_today
from services.core.config import Settings
from services.core.errors import InvalidInput, TooLarge
from services.core.jobs import enqueue
from services.core.policy import Purpose, policy_of
from services.sessions.service import SessionCheck, check_upload, resolve_purpose
from services.upload.trailing import trailing_bytes
from storage.base import ObjectStore
from workers.engine.imaging import (
    JPEG,
    PNG,
    ImageInfo,
    SniffedType,
    decode_image,
    sniff,
    validate_upload,
)

CHUNK = 1024 * 1024

# The widths of the event and purpose columns.
EVENT_MAX = 200
PURPOSE_MAX = 500

# What a photo with trailing data is stored as: JPEG and HEIC as JPEG (a lossless
# copy of a photo would be several times its size), PNG and WebP as lossless PNG.
_RE_ENCODED = {
    "image/jpeg": JPEG, "image/heic": JPEG, "image/heif": JPEG,
    "image/png": PNG, "image/webp": PNG,
}


@dataclass(frozen=True)
class UploadForm:
    event: str
    purpose: str
    device: Device
    captured_on: date | None
    # The file's name on the uploader's device, shown on review cards.
    file_name: str | None = None
    # A photography session (services.sessions) the upload belongs to; None: none named.
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class UploadResult:
    media: Media
    notices: list[str]


def _file_name(name: str | None) -> str | None:
    """Only the last part of the name (browsers may send a path), printable, at most 255
    characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if ch.isprintable()).strip()[:255]
    return clean or None


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


def _re_encode(path: Path, sniffed: SniffedType, max_pixels: int) -> tuple[int, str]:
    """Replace the file at `path` by its decoded pixels alone (upright, no metadata),
    in the format `_RE_ENCODED` names; returns the new size and SHA-256."""
    rgb = decode_image(path.read_bytes(), max_pixels=max_pixels)
    out = io.BytesIO()
    target = _RE_ENCODED[sniffed.mime]
    if target is JPEG:
        Image.fromarray(rgb).save(out, "JPEG", quality=95)
    else:
        Image.fromarray(rgb).save(out, "PNG")
    data = out.getvalue()
    path.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


def accept_upload(
    session: Session,
    store: ObjectStore,
    settings: Settings,
    principal: Principal,
    stream: BinaryIO,
    form: UploadForm,
) -> UploadResult:
    principal.require(Role.STAFF, Role.SLT, Role.ADMIN)
    # The event is required; the purpose may come from the photography session instead.
    validate.text(form.event, field="event", max_length=EVENT_MAX, required=True)
    validate.text(form.purpose, field="purpose", max_length=PURPOSE_MAX)
    policy = policy_of(principal.org.policy)
    today = local_today(policy)
    if form.captured_on is not None:
        validate.captured_on(form.captured_on, today=today)
    purpose = _named_purpose(session, principal, form)
    with tempfile.TemporaryDirectory(prefix="cg-upload-") as tmp:
        path = Path(tmp) / "upload"
        with path.open("wb") as fh:
            size, sha256 = _spool(stream, fh, settings.max_upload_bytes)
        if size == 0:
            raise InvalidInput("the file is empty")
        with path.open("rb") as fh:
            sniffed = sniff(fh.read(64))
        info = validate_upload(path, sniffed, max_pixels=settings.max_image_pixels)
        notices: list[str] = []
        flags: dict[str, object] = {}
        captured_on = form.captured_on
        make = model = None
        width, height = info.width, info.height
        if isinstance(info, ImageInfo):
            make = validate.metadata(info.camera_make)
            model = validate.metadata(info.camera_model)
            camera = validate.camera_date(
                info.captured_at.date() if info.captured_at else None, today=today)
            if camera.ignored is not None:
                flags["exif_date_ignored"] = camera.ignored.isoformat()
                notices.append(
                    f"The camera's date ({camera.ignored.isoformat()}) is not plausible, so it "
                    "was ignored" + ("." if form.captured_on else "; retention counts from "
                                     "the upload."))
            if captured_on is None:
                captured_on = camera.value
            trailing = trailing_bytes(path.read_bytes(), sniffed.mime)
            if trailing != 0:
                # Only the pixels are kept; the original is replaced, never stored.
                size, sha256 = _re_encode(path, sniffed, settings.max_image_pixels)
                sniffed = _RE_ENCODED[sniffed.mime]
                flags["re_encoded"] = "trailing_data"
                notices.append(
                    "Other data followed the end of the photo in this file; only the photo "
                    "was kept, saved again without it.")
        # Retention counts from the capture date if known and plausible, else the upload.
        start = captured_on or today
        sessioned = _session_check(session, principal, form, purpose, captured_on or today)
        media_id = uuid.uuid4()
        key = f"originals/{principal.org_id}/{media_id}{sniffed.extension}"
        media = MediaRepository(session).add(
            Media(
                id=media_id,
                org_id=principal.org_id,
                uploaded_by=principal.token_id,
                uploader_name=principal.name,
                event=form.event.strip(),
                purpose=purpose.name,
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
                retention_until=start + timedelta(days=policy.retention_for(purpose.name)),
                session_id=sessioned.session.id if sessioned.session is not None else None,
                upload_flags=sessioned.flags or None,
                original_key=key,
                file_name=_file_name(form.file_name),
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
         "event": media.event, "purpose": media.purpose,
         "session_id": str(media.session_id) if media.session_id else None,
         "flags": [f["code"] for f in media.upload_flags or []], **flags},
    )
    enqueue(session, "consentgate.screen_media", str(media.id))
    return UploadResult(media=media, notices=notices)



# --- purposes and photography sessions (issue 10) ----------------------------


def _named_purpose(session: Session, principal: Principal, form: UploadForm) -> Purpose:
    """The policy's purpose the upload is for: the one it names (case-insensitively), or
    its session's when it names a session and no purpose. 422 with `allowed` otherwise,
    before anything is read or written."""
    policy = policy_of(principal.org.policy)
    if form.purpose.strip():
        found = resolve_purpose(policy, form.purpose)
        if form.session_id is not None:
            named = PhotoSessionRepository(session).get(principal.org_id, form.session_id)
            if named is not None and policy.purpose(named.purpose) != found:
                raise InvalidInput(
                    f"the session is for {named.purpose}, not {found.name}; leave the "
                    "purpose out or choose the session's", field="purpose",
                    allowed=[named.purpose])
        return found
    if form.session_id is not None:
        named = PhotoSessionRepository(session).get(principal.org_id, form.session_id)
        if named is not None:
            return resolve_purpose(policy, named.purpose)
    raise InvalidInput("purpose is required: say what the photo is for", field="purpose",
                       allowed=policy.purpose_names())


def _session_check(session: Session, principal: Principal, form: UploadForm,
                   purpose: Purpose, taken_on: date) -> SessionCheck:
    return check_upload(session, principal, policy_of(principal.org.policy),
                        session_id=form.session_id, device=form.device, taken_on=taken_on,
                        purpose=purpose)
