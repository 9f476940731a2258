"""Pictures for the people who may look: the medium itself (for SLT, or its own
uploader), face crops, a preview of the blurred copy, a clean preview of a video,
and enrolment photos.

Never public. Every picture is re-encoded from pixels with no metadata, so no
location or camera data reaches a browser cache. Decoded pictures are kept in a
small in-process cache, so a review page with thirty face crops decodes the
photo once. A video's crops are made in one decoding pass per medium (requests
arriving meanwhile wait for it rather than decode again).

The one thing derived that is written to the object store is a video's preview
(`preview_clip`), under ``derivatives/<org>/<media>/`` where the retention purge
deletes it with the medium.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import cv2
import numpy as np
from sqlalchemy.orm import Session

from models.clock import utcnow
from models.orm import Channel, Face, Media, MediaKind, MediaStatus, Role
from models.repositories.review import ReviewRepository
from services.core import intents
from services.core.auth import Principal
from services.core.config import Settings
from services.core.errors import ConsentGateError, Gone, NotFound
from services.gate.decide import load_facts
from services.gate.media import get_media
from services.publish.clean import clean_video_copy
from services.publish.redact import blur_regions, faces_to_blur, grow
from services.register.service import get_pupil
from services.review.detail import thumbnail_faces
from storage.base import ObjectStore
from workers.engine.errors import MediaRejected
from workers.engine.imaging import (
    VideoFrames,
    decode_image,
    encode_clean_jpeg,
    iter_video_frames,
    probe_video,
)
from workers.engine.types import Box, RGBImage

REVIEWERS = (Role.SLT, Role.ADMIN)
V = TypeVar("V")

# Longest side of the picture shown for review, in pixels; crops come from it too.
VIEW_MAX_SIDE = 2400
# Longest side of a thumbnail (review queue, enrolment photos), in pixels.
THUMB_MAX_SIDE = 360
# Face crops are the face box grown by this fraction of its size on each side.
CROP_MARGIN = 0.35
# At most this many decoded pictures are kept (about 13 MB each at 2400 x 1800).
PICTURES_CACHED = 8
# Face crops kept, as JPEG bytes (about 10 KB each).
CROPS_CACHED = 4096


@dataclass(frozen=True)
class Picture:
    rgb: RGBImage
    # Size of the full picture the face boxes refer to; rgb may be smaller.
    width: int
    height: int

    @property
    def scale(self) -> float:
        return float(self.rgb.shape[1]) / self.width


# Keys are (media id, sha256 of the original, frame or face id): a medium's pictures are
# only ever served after its row has been read and checked for this viewer.
_Key = tuple[uuid.UUID, str, object]


class _Cache(Generic[V]):
    """Least recently used, shared by the threads of one process."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[_Key, V] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: _Key) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: _Key, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class _KeyLocks:
    """One lock per key, so one medium's video is decoded by one request at a time while
    other media go on in parallel. A key's lock is dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[_Key, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: _Key) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


_pictures: _Cache[Picture] = _Cache(PICTURES_CACHED)
_crops: _Cache[bytes] = _Cache(CROPS_CACHED)
_rates: _Cache[float] = _Cache(256)
_video_locks = _KeyLocks()


def viewable_media(session: Session, principal: Principal, media_id: uuid.UUID) -> Media:
    """SLT and admins see any medium of their organisation; staff only their own uploads."""
    principal.require(Role.SLT, Role.ADMIN, Role.STAFF)
    media = get_media(session, principal, media_id)
    if media.status == MediaStatus.REJECTED:
        raise Gone("this image was rejected and its file deleted")
    return media


def picture(store: ObjectStore, settings: Settings, media: Media, frame: int = 0) -> Picture:
    key: _Key = (media.id, media.sha256, frame)
    cached = _pictures.get(key)
    if cached is not None:
        return cached
    if media.kind == MediaKind.IMAGE:
        full = decode_image(store.get(media.original_key), max_pixels=settings.max_image_pixels)
    else:
        full = _video_frame(store, settings, media, frame)
    height, width = full.shape[:2]
    scale = min(1.0, VIEW_MAX_SIDE / max(height, width))
    rgb = full if scale == 1.0 else _resize(full, scale)
    result = Picture(rgb=rgb, width=width, height=height)
    _pictures.put(key, result)
    return result


def _resize(rgb: RGBImage, scale: float) -> RGBImage:
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _video_frame(store: ObjectStore, settings: Settings, media: Media, frame: int) -> RGBImage:
    with tempfile.TemporaryDirectory(prefix="cg-review-") as tmp:
        path = Path(tmp) / "video"
        store.download(media.original_key, path)
        # The same frame sequence as screening, so the frame indices of faces are found.
        for index, rgb in iter_video_frames(path):
            if index == frame:
                return rgb
            if index > frame:
                break
    raise NotFound("that frame is not in this video", frame=frame)


def default_frame(media: Media) -> int:
    """For a video, the sampled frame with the most faces; 0 for an image."""
    if media.kind == MediaKind.IMAGE or not media.faces:
        return 0
    counts: dict[int, int] = {}
    for face in media.faces:
        counts[face.frame] = counts.get(face.frame, 0) + 1
    return max(sorted(counts), key=lambda f: counts[f])


def view_jpeg(store: ObjectStore, settings: Settings, media: Media, frame: int, *,
              thumb: bool = False) -> bytes:
    rgb = picture(store, settings, media, frame).rgb
    scale = THUMB_MAX_SIDE / max(rgb.shape[:2])
    if thumb and scale < 1:
        rgb = _resize(rgb, scale)
    return encode_clean_jpeg(rgb, quality=85)


def face_jpeg(store: ObjectStore, settings: Settings, media: Media,
              face_id: uuid.UUID) -> bytes:
    # Only crops of this medium's own faces are ever cached under its id and digest, so a
    # hit needs neither its faces nor its file (a video's page asks for hundreds).
    key: _Key = (media.id, media.sha256, face_id)
    cached = _crops.get(key)
    if cached is not None:
        return cached
    face = next((f for f in media.faces if f.id == face_id), None)
    if face is None:
        raise NotFound("no such face in this image")
    if media.kind == MediaKind.IMAGE:
        pic = picture(store, settings, media)
        crop = _crop(pic, face)
        _crops.put(key, crop)
        return crop
    # A video's faces are spread over many frames: one decoding pass crops the faces its
    # review page shows (the thumbnails of every track), or every face when another is
    # asked for. Requests for the same video meanwhile wait, then find theirs cached.
    with _video_locks.hold((media.id, media.sha256, "crops")):
        cached = _crops.get(key)
        if cached is not None:
            return cached
        wanted = thumbnail_faces(media)
        if face.id not in wanted:
            wanted = {f.id for f in media.faces}
        cached = _crop_video(store, media, [f for f in media.faces if f.id in wanted]).get(
            face.id)
    if cached is None:
        raise NotFound("that face's frame is not in this video")
    return cached


def _crop_video(store: ObjectStore, media: Media, faces: list[Face]) -> dict[uuid.UUID, bytes]:
    by_frame: dict[int, list[Face]] = {}
    for f in faces:
        by_frame.setdefault(f.frame, []).append(f)
    crops: dict[uuid.UUID, bytes] = {}
    if not by_frame:
        return crops
    last = max(by_frame)
    with tempfile.TemporaryDirectory(prefix="cg-review-") as tmp:
        path = Path(tmp) / "video"
        store.download(media.original_key, path)
        frames = VideoFrames(path)
        _rates.put((media.id, media.sha256, "fps"), frames.fps)
        try:
            # The same frame sequence as screening, so the frame indices of faces are found.
            for index, rgb in frames:
                here = by_frame.get(index)
                if here:
                    height, width = rgb.shape[:2]
                    pic = Picture(rgb=rgb, width=width, height=height)
                    for f in here:
                        crop = _crop(pic, f)
                        _crops.put((media.id, media.sha256, f.id), crop)
                        crops[f.id] = crop
                if index >= last:
                    break
        finally:
            frames.close()
    return crops


def video_fps(store: ObjectStore, media: Media) -> float | None:
    """Frames per second of a video (what its preview and its frame numbers run at), or
    None for a photo or when the file cannot be read any more."""
    if media.kind == MediaKind.IMAGE:
        return None
    key: _Key = (media.id, media.sha256, "fps")
    cached = _rates.get(key)
    if cached is not None:
        return cached
    try:
        with tempfile.TemporaryDirectory(prefix="cg-review-") as tmp:
            path = Path(tmp) / "video"
            store.download(media.original_key, path)
            fps = probe_video(path).fps
    except (ConsentGateError, MediaRejected):
        return None
    _rates.put(key, fps)
    return fps


def preview_key(media: Media) -> str:
    """Where a video's clean preview is kept: under the medium's derivatives folder,
    which the retention purge deletes with it."""
    return f"derivatives/{media.org_id}/{media.id}/preview.webm"


def preview_clip(store: ObjectStore, media: Media) -> bytes:
    """A clean re-encode of the video for review (WebM, no sound, no metadata; built
    from the frames screening saw, never the uploaded file), made once and kept."""
    if media.kind == MediaKind.IMAGE:
        raise NotFound("only videos have a preview clip")
    key = preview_key(media)
    with _video_locks.hold((media.id, media.sha256, "preview")):
        if store.exists(key):
            return store.get(key)
        clip = clean_video_copy(store, media.original_key,
                                expected_frames=media.frames_screened)
        # The medium's row owns it (derived folder); if the medium is purged meanwhile,
        # the intent sweep finds no owner and deletes it.
        intents.record(key)
        store.put(key, clip, content_type="video/webm")
        return clip


def _crop(pic: Picture, face: Face) -> bytes:
    w, h = face.right - face.left, face.bottom - face.top
    top = max(0, face.top - CROP_MARGIN * h)
    bottom = min(pic.height, face.bottom + CROP_MARGIN * h)
    left = max(0, face.left - CROP_MARGIN * w)
    right = min(pic.width, face.right + CROP_MARGIN * w)
    s = pic.scale
    crop = pic.rgb[int(top * s):max(int(top * s) + 1, int(bottom * s)),
                   int(left * s):max(int(left * s) + 1, int(right * s))]
    # Small faces are enlarged so they can be seen; the pixels stay as they are.
    side = max(crop.shape[:2])
    if side < 160:
        crop = np.asarray(cv2.resize(crop, None, fx=160 / side, fy=160 / side,
                                     interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    return encode_clean_jpeg(np.ascontiguousarray(crop), quality=90)


def preview_jpeg(session: Session, store: ObjectStore, settings: Settings, media: Media,
                 channel: Channel) -> bytes:
    """The picture with every face not allowed on the channel blurred, as the published
    copy will be (at review size)."""
    if media.kind != MediaKind.IMAGE:
        raise NotFound("only photos can be blurred")
    pic = picture(store, settings, media)
    facts = load_facts(session, [media])
    s = pic.scale
    regions: list[Box] = []
    for face in faces_to_blur(media, facts, channel.value, utcnow().date()):
        top, right, bottom, left = grow((face.top, face.right, face.bottom, face.left),
                                        pic.width, pic.height)
        regions.append((int(top * s), int(np.ceil(right * s)), int(np.ceil(bottom * s)),
                        int(left * s)))
    return encode_clean_jpeg(blur_regions(pic.rgb, regions), quality=85)


def reference_jpeg(session: Session, store: ObjectStore, settings: Settings,
                   principal: Principal, pupil_id: uuid.UUID, photo_id: uuid.UUID) -> bytes:
    principal.require(Role.SLT, Role.ADMIN)
    pupil = get_pupil(session, principal, pupil_id)
    photo = ReviewRepository(session).reference_photo(pupil.id, photo_id)
    if photo is None:
        raise NotFound("no such enrolment photo")
    data = settings.template_fernet().decrypt(store.get(photo.storage_key))
    rgb = decode_image(data, max_pixels=settings.max_image_pixels)
    scale = min(1.0, THUMB_MAX_SIDE / max(rgb.shape[:2]))
    return encode_clean_jpeg(rgb if scale == 1.0 else _resize(rgb, scale), quality=85)
