"""The face engine: find every face, judge whether it can be judged, then match it.

Fail-closed rules, in order:

1. Detection errs towards finding too much: a low detector threshold; a photo shrunk
   for the first pass is also searched at full resolution, in tiles; and when these
   find nothing with confidence (no score >= detect_threshold) a second, more thorough
   pass (upsampled, tiled, and the image rotated by 90/180/270 degrees). An image is
   only face-free if all agree.
2. A face below the quality floor (too small, too blurred or dark, or turned too far
   away) is ``uncertain``. It is never encoded, so it can never be matched.
3. Every other face is encoded and matched open-set (see ``match.py``): it is
   ``matched`` only if one consented pupil is clearly nearest and within threshold.

Encodings live only inside one call: they are never returned, stored or logged.
Numbers behind every default below are in docs/calibration.md.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from workers.engine.detect import (
    NMS_IOU,
    CenterFace,
    Detection,
    default_threads,
    nms_indices,
    unrotate_box,
)
from workers.engine.encode import Encoder, frontal_ratio, sharpness, upright_turns, yaw_proxy
from workers.engine.imaging import VideoFrames
from workers.engine.match import Decision, Gallery
from workers.engine.tracks import (
    SEGMENT_S,
    Tracker,
    appearance,
    decide_track,
    frame_signature,
    is_cut,
    segment_of,
)
from workers.engine.types import (
    TRUNCATION_SLACK,
    Box,
    Encoding,
    EnrolmentRejected,
    RGBImage,
    ScreenedFace,
    VideoScreening,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    # Open-set matching (Euclidean distance between dlib encodings).
    threshold: float = 0.45
    margin: float = 0.10
    # CenterFace heatmap score at or above which a face can be matched.
    detect_threshold: float = 0.3
    # Detections scoring from this up to detect_threshold are kept as `uncertain` (never
    # encoded, never matched): a tiny face in a crowd can score 0.18 at first-pass scale
    # and must send the photo to review, not vanish. Non-faces scored <= 0.13 in the
    # calibration set (docs/calibration.md).
    candidate_threshold: float = 0.15
    # First pass: images are shrunk so their longer side is at most this (px).
    detect_max_side: int = 1600
    # When the first pass shrank the image, a full-resolution pass in tiles always runs
    # too (a face 24 px tall in a 12 MP photo is under 10 px at first-pass scale).
    # Its detections must score at least this to be kept (`uncertain` below
    # detect_threshold, as any other detection).
    full_res_threshold: float = 0.15
    # Second pass (first found nothing): scale x this, capped at this many pixels, tiled.
    second_pass_upsample: float = 2.0
    second_pass_max_pixels: int = 12_000_000
    tile_side: int = 1024
    tile_overlap: int = 128
    # Screening quality floor; below it a face is 'uncertain' and not encoded.
    min_face_px: int = 40  # detector box height in image px
    min_sharpness: float = 10.0  # see encode.sharpness
    max_yaw: float = 0.6  # |encode.yaw_proxy|
    min_frontal: float = 0.5  # encode.frontal_ratio
    # Enrolment (reference photo) gate, stricter: a template is the basis of all matches.
    enrol_min_face_px: int = 100
    enrol_min_sharpness: float = 30.0
    enrol_max_yaw: float = 0.35
    enrol_min_frontal: float = 0.7
    enrol_min_score: float = 0.5
    # Video: every decoded frame is searched with its longer side shrunk to at most this
    # (px); keyframes, every video_keyframe_s seconds, also get the still-photo passes.
    video_detect_max_side: int = 640
    video_keyframe_s: float = 0.5
    # onnxruntime intra-op threads per process, for the detector and the descriptor
    # network; 0 = min(2, CPUs).
    detector_threads: int = 0
    # Templates only: face_recognition's num_jitters (mean descriptor over this many
    # jittered chips). Screening always encodes once. Chosen in docs/calibration.md.
    enrol_jitters: int = 1

    def __post_init__(self) -> None:
        checks = {
            "threshold": 0 < self.threshold < 2,
            "margin": 0 <= self.margin < 2,
            "detect_threshold": 0 < self.detect_threshold < 1,
            "candidate_threshold": 0 < self.candidate_threshold <= self.detect_threshold,
            "detect_max_side": self.detect_max_side >= 64,
            "full_res_threshold": 0 < self.full_res_threshold < 1,
            "video_detect_max_side": self.video_detect_max_side >= 64,
            "video_keyframe_s": self.video_keyframe_s > 0,
            "second_pass_upsample": self.second_pass_upsample >= 1,
            "second_pass_max_pixels": self.second_pass_max_pixels > 0,
            "tile_side": self.tile_side >= 64,
            "tile_overlap": 0 <= self.tile_overlap < self.tile_side,
            "min_face_px": self.min_face_px > 0,
            "min_sharpness": self.min_sharpness >= 0,
            "max_yaw": self.max_yaw > 0,
            "min_frontal": self.min_frontal >= 0,
            "enrol_min_face_px": self.enrol_min_face_px >= self.min_face_px,
            "enrol_min_sharpness": self.enrol_min_sharpness >= self.min_sharpness,
            "enrol_max_yaw": 0 < self.enrol_max_yaw <= self.max_yaw,
            "enrol_min_frontal": self.enrol_min_frontal >= self.min_frontal,
            "enrol_min_score": self.detect_threshold <= self.enrol_min_score < 1,
            "detector_threads": self.detector_threads >= 0,
            "enrol_jitters": 1 <= self.enrol_jitters <= 100,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid EngineConfig values: {', '.join(bad)}")


@dataclass(frozen=True, slots=True)
class FoundFace:
    """One detected face. ``detection`` is in the pixels of the image rotated by
    ``rotation`` quarter turns (np.rot90); ``box`` is in the original image."""

    detection: Detection
    rotation: int
    box: Box
    height_px: float
    sharpness: float
    yaw: float
    frontal: float

    @property
    def score(self) -> float:
        return self.detection.score


@dataclass(frozen=True, slots=True)
class FoundFaces:
    faces: list[FoundFace]
    # The image at each rotation the faces refer to; 0 is the input itself.
    images: dict[int, RGBImage]
    second_pass: bool
    # Whether the tiled full-resolution pass ran (the first pass had shrunk the image).
    full_resolution: bool = False


_shared_lock = threading.Lock()
_detectors: dict[int, CenterFace] = {}
_encoders: dict[int, Encoder] = {}


def _shared_detector(threads: int) -> CenterFace:
    with _shared_lock:
        if threads not in _detectors:
            _detectors[threads] = CenterFace(threads)
        return _detectors[threads]


def _shared_encoder(threads: int) -> Encoder:
    with _shared_lock:
        if threads not in _encoders:
            _encoders[threads] = Encoder(threads)
        return _encoders[threads]


def _merge(hits: list[tuple[Detection, int]], w: int, h: int) -> list[tuple[Detection, int]]:
    """One detection per face across passes and rotations, in original coordinates.

    Where the same face was found sideways in one frame and upright in another, the
    upright one is kept: only there do the landmarks and the encoder work. A sideways
    detection mostly inside an upright one from another frame is the same face seen
    partially (IoU alone misses it), and is dropped too.
    """
    if len(hits) <= 1:
        return hits
    boxes = np.array([unrotate_box(d, k, w, h) for d, k in hits])
    upright = np.array([upright_turns(d.landmarks) == 0 for d, _ in hits])
    # Scores are in [0, 1]; +1 ranks every upright detection above every sideways one.
    rank = np.array([d.score for d, _ in hits]) + upright
    keep = nms_indices(boxes, rank, NMS_IOU)
    kept_upright = [i for i in keep if upright[i]]
    out = []
    for i in keep:
        if not upright[i] and any(
            hits[j][1] != hits[i][1] and _covered(boxes[i], boxes[j]) >= 0.5 for j in kept_upright
        ):
            continue
        out.append(hits[i])
    return out


def _covered(inner: npt.NDArray[np.float64], outer: npt.NDArray[np.float64]) -> float:
    """Fraction of box ``inner`` (x1, y1, x2, y2) that lies inside box ``outer``."""
    iw = min(inner[2], outer[2]) - max(inner[0], outer[0])
    ih = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    if iw <= 0 or ih <= 0 or area <= 0:
        return 0.0
    return float(iw * ih / area)


def _check_rgb(rgb: RGBImage) -> RGBImage:
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.dtype != np.uint8
        or rgb.ndim != 3
        or rgb.shape[2] != 3
    ):
        shape = getattr(rgb, "shape", None)
        raise ValueError(f"expected an RGB uint8 (H, W, 3) array, got {type(rgb).__name__} {shape}")
    return rgb


@dataclass(frozen=True, slots=True)
class _VideoFace:
    face: FoundFace
    look: npt.NDArray[np.float32]
    quality: float
    # For a face above the quality floor: a crop around it (read-only view, see
    # `_face_crop`) and its detection in crop pixels, to encode later without the frame.
    crop: RGBImage | None
    crop_detection: Detection


@dataclass(frozen=True, slots=True)
class _FrameResult:
    index: int
    faces: list[_VideoFace]
    signature: npt.NDArray[np.float32]


# Crop margin around a face, in face-box sides: dlib's chip (the 5 landmarks' span plus
# 25% padding) stays well inside, so encoding the crop equals encoding the frame.
_CROP_MARGIN = 1.0


def _face_crop(img: RGBImage, det: Detection) -> tuple[RGBImage, Detection]:
    h, w = img.shape[:2]
    side = max(det.width, det.height)
    x0 = max(0, int(det.x1 - _CROP_MARGIN * side))
    y0 = max(0, int(det.y1 - _CROP_MARGIN * side))
    x1 = min(w, math.ceil(det.x2 + _CROP_MARGIN * side))
    y1 = min(h, math.ceil(det.y2 + _CROP_MARGIN * side))
    # A copy: the frame itself must not be kept alive by a pending crop.
    crop = np.ascontiguousarray(img[y0:y1, x0:x1]).copy()
    return crop, det.shifted(-x0, -y0)


def face_quality(face: FoundFace) -> float:
    """Rank of a face for encoding within its track: larger, sharper and more frontal is
    better. Sharpness counts up to 100 (beyond it, no visible difference)."""
    return (
        face.height_px
        * min(face.sharpness, 100.0)
        * min(face.frontal, 1.0)
        * max(0.0, 1.0 - abs(face.yaw))
    )


class FaceEngine:
    """Models load on first use and are shared by every engine in the process."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        threads = config.detector_threads or default_threads()
        self._threads = threads
        self._detector = _shared_detector(threads)
        self._encoder = _shared_encoder(threads)
        # dlib's shape predictor and network are not documented as re-entrant.
        self._encode_lock = threading.Lock()

    def warm_up(self) -> None:
        self._detector.warm_up()
        self._encoder.warm_up()

    # ---------------------------------------------------------------- detection

    def find_faces(
        self,
        rgb: RGBImage,
        *,
        rotations: bool = True,
        known: tuple[float, list[Detection]] | None = None,
    ) -> FoundFaces:
        """Every face, with the quality measures the gates use; no encoding.

        ``rotations`` allows the second pass to try the image turned by 90/180/270
        degrees. A sideways or upside-down face found by any pass is always looked
        for again in the image turned to make it upright, where it can be encoded.
        ``known``: (scale, detections) of a detector run the caller already made on
        this image; used as the first pass when at least as fine as it.
        """
        img = _check_rgb(rgb)
        h, w = img.shape[:2]
        images: dict[int, RGBImage] = {0: img}
        if h == 0 or w == 0:
            return FoundFaces([], images, second_pass=False)
        cfg = self.config
        scale = min(1.0, cfg.detect_max_side / max(h, w))
        if known is not None and known[0] >= scale / 1.05:
            hits = [(d, 0) for d in known[1]]
        else:
            hits = [(d, 0) for d in self._detect(images, 0, scale)]
            if known is not None:
                hits.extend((d, 0) for d in known[1])
        full = scale < 1.0
        if full:
            hits.extend((d, 0) for d in self._full_resolution(img, [d for d, _ in hits]))
        # Nothing found with confidence: look harder. Only weak detections (often a
        # shirt or a hand) must not stop the search for a small real face.
        second = not any(d.score >= cfg.detect_threshold for d, _ in hits)
        if second:
            hits.extend(self._second_pass(images, 1.0 if full else scale, rotations=rotations))
        # Look again in every frame in which a face found so far would be upright,
        # until no new frame is called for (at most the three turned frames).
        searched = {0, 1, 2, 3} if second and rotations else {0}
        while True:
            wanted = {(k + upright_turns(d.landmarks)) % 4 for d, k in hits} - searched
            if not wanted:
                break
            for k in sorted(wanted):
                hits.extend((d, k) for d in self._detect(images, k, scale))
            searched |= wanted
        hits = _merge(hits, w, h)
        faces = [self._describe(images[k], d, k, w, h) for d, k in hits]
        faces.sort(key=lambda f: (f.box[3], f.box[0]))
        return FoundFaces(faces, images, second_pass=second, full_resolution=full)

    def first_pass(self, rgb: RGBImage) -> list[Detection]:
        """The first pass alone (no full-resolution or second pass, no rotations), in the
        image's own pixels. For tools that need boxes which do not move when the other
        passes change (bench/synth.py cuts its faces with it)."""
        img = _check_rgb(rgb)
        scale = min(1.0, self.config.detect_max_side / max(img.shape[:2]))
        return self._detector.detect(img, scale=scale, threshold=self.config.candidate_threshold)

    def _full_resolution(self, img: RGBImage, first: list[Detection]) -> list[Detection]:
        """The image at its own size in overlapping tiles: faces too small for the shrunk
        first pass. Faces larger than the tile overlap may be cut by every tile; those
        are the first pass's to find, so fragments cut by a tile edge are dropped, and
        so is anything mostly inside a face the first pass found at twice its height
        or more (an eye or a mouth of a large face; a face is never inside a face)."""
        cfg = self.config
        found = self._detector.detect_tiled(
            img,
            scale=1.0,
            threshold=cfg.full_res_threshold,
            tile=cfg.tile_side,
            overlap=cfg.tile_overlap,
            drop_cut=True,
        )
        big = [
            np.array([d.x1, d.y1, d.x2, d.y2])
            for d in first
            if d.score >= cfg.detect_threshold
        ]
        return [
            d
            for d in found
            if not any(
                _covered(np.array([d.x1, d.y1, d.x2, d.y2]), b) >= 0.5
                and b[3] - b[1] >= 2 * d.height
                for b in big
            )
        ]

    def _detect(self, images: dict[int, RGBImage], k: int, scale: float) -> list[Detection]:
        if k not in images:
            images[k] = np.ascontiguousarray(np.rot90(images[0], k))
        return self._detector.detect(
            images[k], scale=scale, threshold=self.config.candidate_threshold
        )

    def _second_pass(
        self, images: dict[int, RGBImage], searched_scale: float, *, rotations: bool
    ) -> list[tuple[Detection, int]]:
        """``searched_scale``: the finest scale searched so far (1.0 after the
        full-resolution pass); the upsampled pass runs only if it would be finer."""
        cfg = self.config
        img = images[0]
        h, w = img.shape[:2]
        hits: list[tuple[Detection, int]] = []
        first_scale = min(1.0, cfg.detect_max_side / max(h, w))
        cap = math.sqrt(cfg.second_pass_max_pixels / (h * w))
        scale = min(first_scale * cfg.second_pass_upsample, cap)
        if scale > searched_scale * 1.05:
            if max(h, w) * scale <= cfg.detect_max_side:
                dets = self._detector.detect(img, scale=scale, threshold=cfg.candidate_threshold)
            else:
                dets = self._detector.detect_tiled(
                    img,
                    scale=scale,
                    threshold=cfg.candidate_threshold,
                    tile=cfg.tile_side,
                    overlap=cfg.tile_overlap,
                )
            hits.extend((d, 0) for d in dets)
        if rotations:
            for k in (1, 2, 3):
                hits.extend((d, k) for d in self._detect(images, k, first_scale))
        return hits

    @staticmethod
    def _describe(img: RGBImage, det: Detection, k: int, orig_w: int, orig_h: int) -> FoundFace:
        x1, y1, x2, y2 = unrotate_box(det, k, orig_w, orig_h)
        top = min(max(round(y1), 0), orig_h)
        left = min(max(round(x1), 0), orig_w)
        bottom = min(max(round(y2), 0), orig_h)
        right = min(max(round(x2), 0), orig_w)
        return FoundFace(
            detection=det,
            rotation=k,
            box=(top, right, bottom, left),
            height_px=det.height,
            sharpness=sharpness(img, det),
            yaw=yaw_proxy(det.landmarks),
            frontal=frontal_ratio(det.landmarks),
        )

    def _screenable(self, face: FoundFace) -> bool:
        cfg = self.config
        return (
            face.score >= cfg.detect_threshold
            and face.height_px >= cfg.min_face_px
            and face.sharpness >= cfg.min_sharpness
            and abs(face.yaw) <= cfg.max_yaw
            and face.frontal >= cfg.min_frontal
        )

    def _encode(
        self,
        images: dict[int, RGBImage],
        faces: Sequence[FoundFace],
        *,
        exact: bool = False,
        num_jitters: int = 1,
    ) -> npt.NDArray[np.float64]:
        out = np.empty((len(faces), 128), dtype=np.float64)
        for k in sorted({f.rotation for f in faces}):
            idx = [i for i, f in enumerate(faces) if f.rotation == k]
            with self._encode_lock:
                out[idx] = self._encoder.encode(
                    images[k], [faces[i].detection for i in idx], exact=exact,
                    num_jitters=num_jitters,
                )
        return out

    # ---------------------------------------------------------------- screening

    def screen_image(
        self, rgb: RGBImage, gallery: Gallery, *, frame: int = 0
    ) -> list[ScreenedFace]:
        return self._screen(rgb, gallery, frame=frame, rotations=True)

    def screen_video(self, path: Path, gallery: Gallery) -> VideoScreening:
        """Every face in every decoded frame of a video, linked into tracks.

        Each frame the decoder yields (``imaging.VideoFrames``, the copier's frame source
        too) is searched with its longer side shrunk to ``video_detect_max_side``;
        keyframes (every ``video_keyframe_s`` s) also get the still-photo passes: first
        pass up to ``detect_max_side``, the full-resolution tiles, and when nothing is
        found the upsampled second pass (no rotations: video orientation comes from the
        container's display matrix). Faces are linked into tracks (``tracks.py``); the
        best judgeable face of each track in every segment is encoded and matched, and
        every face of a track carries the track's decision. One row per detection.

        A stream that stops decoding part-way is not an error: what was decoded is
        screened and the result says ``truncated``. Raises like ``probe_video`` when not
        even the first frame decodes.
        """
        frames = VideoFrames(path)
        try:
            return self._screen_frames(frames, gallery)
        finally:
            frames.close()

    def _screen_frames(self, frames: VideoFrames, gallery: Gallery) -> VideoScreening:
        cfg = self.config
        keyframe_every = max(1, round(frames.fps * cfg.video_keyframe_s))
        segment_frames = max(1, round(frames.fps * SEGMENT_S))
        tracker = Tracker()
        rows: list[tuple[int, Box, int]] = []  # (frame, box, track)
        judgeable: set[int] = set()
        looks: dict[int, list[Decision]] = {}
        # track -> (segment, quality, crop, detection in crop) of its best face so far
        pending: dict[int, tuple[int, float, RGBImage, Detection]] = {}
        previous: npt.NDArray[np.float32] | None = None
        gallery_empty = len(gallery) == 0

        def flush(track: int) -> None:
            best = pending.pop(track, None)
            if best is None or gallery_empty:
                return
            _, _, crop, det = best
            with self._encode_lock:
                encoding = self._encoder.encode(crop, [det])
            looks.setdefault(track, []).extend(
                gallery.decide(encoding, threshold=cfg.threshold, margin=cfg.margin)
            )
            del encoding

        for result in self._video_frame_results(frames, keyframe_every):
            if previous is not None and is_cut(previous, result.signature):
                for t in tracker.cut():
                    flush(t)
            previous = result.signature
            ids, ended = tracker.add_frame(
                result.index, [f.face.box for f in result.faces], [f.look for f in result.faces]
            )
            for t in ended:
                flush(t)
            for face, t in zip(result.faces, ids, strict=True):
                rows.append((result.index, face.face.box, t))
                if face.crop is None:
                    continue
                judgeable.add(t)
                segment = segment_of(result.index, tracker.starts[t], segment_frames)
                held = pending.get(t)
                if held is not None and held[0] != segment:
                    flush(t)
                    held = None
                if held is None or face.quality > held[1]:
                    pending[t] = (segment, face.quality, face.crop, face.crop_detection)
        for t in list(pending):
            flush(t)

        decisions = {
            t: decide_track(looks.get(t, []), judgeable=t in judgeable, gallery_empty=gallery_empty)
            for t in range(tracker.count)
        }
        faces = [
            ScreenedFace(
                box, frame, decisions[t].status, decisions[t].pupil_id, decisions[t].distance,
                decisions[t].candidates, t,
            )
            for frame, box, t in rows
        ]
        claimed = frames.claimed_frames
        truncated = frames.error is not None or (
            claimed is not None and frames.decoded < claimed - TRUNCATION_SLACK
        )
        log.debug(
            "video: %d frames decoded (%s claimed)%s, %d faces, %d tracks, %d looks encoded",
            frames.decoded, claimed, ", truncated" if truncated else "", len(faces),
            tracker.count, sum(len(v) for v in looks.values()),
        )
        return VideoScreening(
            faces=faces,
            frames_decoded=frames.decoded,
            frames_claimed=claimed,
            truncated=truncated,
            fps=frames.fps,
            tracks=tracker.count,
            decode_error=frames.error,
        )

    def _video_frame_results(
        self, frames: VideoFrames, keyframe_every: int
    ) -> Iterator[_FrameResult]:
        """`_video_frame` for every frame, in order, computed ``threads`` frames at a time
        (onnxruntime releases the GIL; one single-threaded session per frame in flight
        beats one two-threaded session per frame, measured in docs/calibration.md)."""
        if self._threads <= 1:
            for index, rgb in frames:
                yield self._video_frame(index, rgb, index % keyframe_every == 0, self._detector)
            return
        detector = _shared_detector(1)
        in_flight: collections.deque[Future[_FrameResult]] = collections.deque()
        with ThreadPoolExecutor(self._threads, thread_name_prefix="video-detect") as pool:
            try:
                for index, rgb in frames:
                    in_flight.append(
                        pool.submit(
                            self._video_frame, index, rgb, index % keyframe_every == 0, detector
                        )
                    )
                    # Bounded look-ahead: frames in memory stay few at any resolution.
                    if len(in_flight) > 2 * self._threads:
                        yield in_flight.popleft().result()
                while in_flight:
                    yield in_flight.popleft().result()
            finally:
                for future in in_flight:
                    future.cancel()

    def _video_frame(
        self, index: int, rgb: RGBImage, keyframe: bool, detector: CenterFace
    ) -> _FrameResult:
        cfg = self.config
        img = _check_rgb(rgb)
        h, w = img.shape[:2]
        scale = min(1.0, cfg.video_detect_max_side / max(h, w))
        images: dict[int, RGBImage] = {0: img}
        dets = detector.detect(img, scale=scale, threshold=cfg.candidate_threshold)
        if keyframe:
            # The still-photo passes, minus rotations, starting from the above.
            found = self.find_faces(img, rotations=False, known=(scale, dets))
            images.update(found.images)
            hits = [(f.detection, f.rotation) for f in found.faces]
        else:
            hits = [(d, 0) for d in dets]
        faces: list[_VideoFace] = []
        for det, k in hits:
            face = self._describe(images[k], det, k, w, h)
            look = appearance(img, face.box)
            # Between keyframes a sideways face is not re-detected upright, so its
            # landmarks cannot align it: never encoded (its track may still be, from a
            # keyframe where it was found upright).
            if k == 0 and upright_turns(det.landmarks) == 0 and self._screenable(face):
                crop, crop_det = _face_crop(img, det)
                faces.append(_VideoFace(face, look, face_quality(face), crop, crop_det))
            elif k != 0 and self._screenable(face):
                crop, crop_det = _face_crop(images[k], det)
                faces.append(_VideoFace(face, look, face_quality(face), crop, crop_det))
            else:
                faces.append(_VideoFace(face, look, 0.0, None, det))
        faces.sort(key=lambda f: (f.face.box[3], f.face.box[0]))
        return _FrameResult(index, faces, frame_signature(img))

    def _screen(
        self, rgb: RGBImage, gallery: Gallery, *, frame: int, rotations: bool
    ) -> list[ScreenedFace]:
        cfg = self.config
        found = self.find_faces(rgb, rotations=rotations)
        results: list[ScreenedFace] = [
            ScreenedFace(face.box, frame, "uncertain", None, None) for face in found.faces
        ]
        usable = self.screenable_indices(found)
        if usable and len(gallery) == 0:
            for i in usable:
                results[i] = ScreenedFace(found.faces[i].box, frame, "unknown", None, None)
        elif usable:
            encodings = self.screening_encodings(found, usable)
            decisions = gallery.decide(encodings, threshold=cfg.threshold, margin=cfg.margin)
            del encodings
            for i, d in zip(usable, decisions, strict=True):
                results[i] = ScreenedFace(
                    found.faces[i].box, frame, d.status, d.pupil_id, d.distance, d.candidates
                )
        log.debug(
            "frame %d: %d faces (%d below quality floor)%s",
            frame,
            len(found.faces),
            len(found.faces) - len(usable),
            ", second pass" if found.second_pass else "",
        )
        return results

    def screenable_indices(self, found: FoundFaces) -> list[int]:
        """Indices of the faces above the screening quality floor (the others are
        ``uncertain`` and never encoded)."""
        return [i for i, face in enumerate(found.faces) if self._screenable(face)]

    def screening_encodings(
        self, found: FoundFaces, usable: Sequence[int]
    ) -> npt.NDArray[np.float64]:
        """The descriptors screening matches for ``found.faces[i]``, i in ``usable``. Public
        so that bench/templates_bench.py can match one encoding against several
        galleries; screening itself uses exactly this."""
        return self._encode(found.images, [found.faces[i] for i in usable])

    # ---------------------------------------------------------------- enrolment

    def reference_template(self, rgb: RGBImage) -> Encoding:
        """The template of the one face in a reference photo, or EnrolmentRejected."""
        cfg = self.config
        found = self.find_faces(rgb, rotations=True)
        if not found.faces:
            raise EnrolmentRejected("No face found in this photo", "no_face")
        # Small background faces do not count against "alone"; anything big enough to
        # be screened does, because the template must not be someone else's face.
        visible = [f for f in found.faces if f.height_px >= cfg.min_face_px]
        if len(visible) > 1:
            raise EnrolmentRejected(
                f"This photo shows {len(visible)} faces; use a photo of the pupil alone",
                "several_faces", faces=len(visible),
            )
        face = max(found.faces, key=lambda f: f.height_px)
        if face.score < cfg.enrol_min_score:
            raise EnrolmentRejected(
                "No clear face found in this photo; use a clear, front-on photo",
                "unclear_face", score=round(face.score, 3),
            )
        if face.height_px < cfg.enrol_min_face_px:
            raise EnrolmentRejected(
                f"The face is too small ({round(face.height_px)} px tall); use a closer photo",
                "too_small", face_px=round(face.height_px), min_face_px=cfg.enrol_min_face_px,
            )
        if face.sharpness < cfg.enrol_min_sharpness:
            raise EnrolmentRejected(
                "The photo is too blurred (or too dark); use a sharp, well-lit photo",
                "blurred", sharpness=round(face.sharpness, 1),
            )
        if abs(face.yaw) > cfg.enrol_max_yaw or face.frontal < cfg.enrol_min_frontal:
            raise EnrolmentRejected(
                "The face is turned away from the camera; use a photo looking straight at it",
                "turned_away", yaw=round(face.yaw, 3), frontal=round(face.frontal, 3),
            )
        # Templates come from dlib's own network: they are stored for years and must be
        # reproducible by face_recognition itself. With enrol_jitters > 1 the template is
        # the mean descriptor of that many randomly jittered chips (face_recognition's
        # num_jitters): enrolment only, calibrated in docs/calibration.md.
        encoding: Encoding = self._encode(
            found.images, [face], exact=True, num_jitters=cfg.enrol_jitters
        )[0]
        if not np.all(np.isfinite(encoding)):
            raise EnrolmentRejected("This photo could not be used; try another photo",
                                    "unusable")
        return encoding


@lru_cache(maxsize=8)
def get_engine(config: EngineConfig) -> FaceEngine:
    """One engine per distinct config per process (models are shared between them)."""
    return FaceEngine(config)
