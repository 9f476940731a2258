"""The face engine: find every face, judge whether it can be judged, then match it.

Fail-closed rules, in order:

1. Detection errs towards finding too much: a low detector threshold, and when the
   first pass finds nothing a second, more thorough pass (upsampled, tiled, and the
   image rotated by 90/180/270 degrees). An image is only face-free if both agree.
2. A face below the quality floor (too small, too blurred or dark, or turned too far
   away) is ``uncertain``. It is never encoded, so it can never be matched.
3. Every other face is encoded and matched open-set (see ``match.py``): it is
   ``matched`` only if one consented pupil is clearly nearest and within threshold.

Encodings live only inside one call: they are never returned, stored or logged.
Numbers behind every default below are in docs/calibration.md.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
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
from workers.engine.imaging import sample_video_frames
from workers.engine.match import Gallery
from workers.engine.tracks import apply_track_rules
from workers.engine.types import Box, Encoding, EnrolmentRejected, RGBImage, ScreenedFace

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
    # onnxruntime intra-op threads per process, for the detector and the descriptor
    # network; 0 = min(2, CPUs).
    detector_threads: int = 0

    def __post_init__(self) -> None:
        checks = {
            "threshold": 0 < self.threshold < 2,
            "margin": 0 <= self.margin < 2,
            "detect_threshold": 0 < self.detect_threshold < 1,
            "candidate_threshold": 0 < self.candidate_threshold <= self.detect_threshold,
            "detect_max_side": self.detect_max_side >= 64,
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


class FaceEngine:
    """Models load on first use and are shared by every engine in the process."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        threads = config.detector_threads or default_threads()
        self._detector = _shared_detector(threads)
        self._encoder = _shared_encoder(threads)
        # dlib's shape predictor and network are not documented as re-entrant.
        self._encode_lock = threading.Lock()

    def warm_up(self) -> None:
        self._detector.warm_up()
        self._encoder.warm_up()

    # ---------------------------------------------------------------- detection

    def find_faces(self, rgb: RGBImage, *, rotations: bool = True) -> FoundFaces:
        """Every face, with the quality measures the gates use; no encoding.

        ``rotations`` allows the second pass to try the image turned by 90/180/270
        degrees. A sideways or upside-down face found by any pass is always looked
        for again in the image turned to make it upright, where it can be encoded.
        """
        img = _check_rgb(rgb)
        h, w = img.shape[:2]
        images: dict[int, RGBImage] = {0: img}
        if h == 0 or w == 0:
            return FoundFaces([], images, second_pass=False)
        cfg = self.config
        scale = min(1.0, cfg.detect_max_side / max(h, w))
        hits = [(d, 0) for d in self._detect(images, 0, scale)]
        second = not hits
        if second:
            hits = self._second_pass(images, scale, rotations=rotations)
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
        return FoundFaces(faces, images, second_pass=second)

    def _detect(self, images: dict[int, RGBImage], k: int, scale: float) -> list[Detection]:
        if k not in images:
            images[k] = np.ascontiguousarray(np.rot90(images[0], k))
        return self._detector.detect(
            images[k], scale=scale, threshold=self.config.candidate_threshold
        )

    def _second_pass(
        self, images: dict[int, RGBImage], first_scale: float, *, rotations: bool
    ) -> list[tuple[Detection, int]]:
        cfg = self.config
        img = images[0]
        h, w = img.shape[:2]
        hits: list[tuple[Detection, int]] = []
        cap = math.sqrt(cfg.second_pass_max_pixels / (h * w))
        scale = min(first_scale * cfg.second_pass_upsample, cap)
        if scale > first_scale * 1.05:
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
        self, images: dict[int, RGBImage], faces: Sequence[FoundFace], *, exact: bool = False
    ) -> npt.NDArray[np.float64]:
        out = np.empty((len(faces), 128), dtype=np.float64)
        for k in sorted({f.rotation for f in faces}):
            idx = [i for i, f in enumerate(faces) if f.rotation == k]
            with self._encode_lock:
                out[idx] = self._encoder.encode(
                    images[k], [faces[i].detection for i in idx], exact=exact
                )
        return out

    # ---------------------------------------------------------------- screening

    def screen_image(
        self, rgb: RGBImage, gallery: Gallery, *, frame: int = 0
    ) -> list[ScreenedFace]:
        return self._screen(rgb, gallery, frame=frame, rotations=True)

    def screen_video(
        self, path: Path, gallery: Gallery, *, sample_fps: float
    ) -> list[ScreenedFace]:
        """Every face in every sampled frame. The thorough second pass on an empty frame
        upsamples but does not rotate: video orientation comes from the container's
        display matrix (applied by imaging), and four detector runs per empty frame
        would multiply the cost of long stage or landscape shots. Faces are then linked
        across frames, and a face matched to different pupils in different frames is
        ``uncertain`` throughout (``tracks.py``)."""
        out: list[ScreenedFace] = []
        sampled: list[int] = []
        for index, rgb in sample_video_frames(path, fps=sample_fps):
            out.extend(self._screen(rgb, gallery, frame=index, rotations=False))
            sampled.append(index)
        out, conflicts = apply_track_rules(out, sampled)
        log.debug("screened %d sampled frames, %d faces, %d tracks matched to several pupils",
                  len(sampled), len(out), conflicts)
        return out

    def _screen(
        self, rgb: RGBImage, gallery: Gallery, *, frame: int, rotations: bool
    ) -> list[ScreenedFace]:
        cfg = self.config
        found = self.find_faces(rgb, rotations=rotations)
        results: list[ScreenedFace] = [
            ScreenedFace(face.box, frame, "uncertain", None, None) for face in found.faces
        ]
        usable = [i for i, face in enumerate(found.faces) if self._screenable(face)]
        if usable and len(gallery) == 0:
            for i in usable:
                results[i] = ScreenedFace(found.faces[i].box, frame, "unknown", None, None)
        elif usable:
            encodings = self._encode(found.images, [found.faces[i] for i in usable])
            decisions = gallery.match(encodings, threshold=cfg.threshold, margin=cfg.margin)
            del encodings
            for i, (status, pupil_id, distance) in zip(usable, decisions, strict=True):
                results[i] = ScreenedFace(found.faces[i].box, frame, status, pupil_id, distance)
        log.debug(
            "frame %d: %d faces (%d below quality floor)%s",
            frame,
            len(found.faces),
            len(found.faces) - len(usable),
            ", second pass" if found.second_pass else "",
        )
        return results

    # ---------------------------------------------------------------- enrolment

    def reference_template(self, rgb: RGBImage) -> Encoding:
        """The template of the one face in a reference photo, or EnrolmentRejected."""
        cfg = self.config
        found = self.find_faces(rgb, rotations=True)
        if not found.faces:
            raise EnrolmentRejected("No face found in this photo")
        # Small background faces do not count against "alone"; anything big enough to
        # be screened does, because the template must not be someone else's face.
        visible = [f for f in found.faces if f.height_px >= cfg.min_face_px]
        if len(visible) > 1:
            raise EnrolmentRejected(
                f"This photo shows {len(visible)} faces; use a photo of the pupil alone"
            )
        face = max(found.faces, key=lambda f: f.height_px)
        if face.score < cfg.enrol_min_score:
            raise EnrolmentRejected(
                "No clear face found in this photo; use a clear, front-on photo"
            )
        if face.height_px < cfg.enrol_min_face_px:
            raise EnrolmentRejected(
                f"The face is too small ({round(face.height_px)} px tall); use a closer photo"
            )
        if face.sharpness < cfg.enrol_min_sharpness:
            raise EnrolmentRejected(
                "The photo is too blurred (or too dark); use a sharp, well-lit photo"
            )
        if abs(face.yaw) > cfg.enrol_max_yaw or face.frontal < cfg.enrol_min_frontal:
            raise EnrolmentRejected(
                "The face is turned away from the camera; use a photo looking straight at it"
            )
        # Templates come from dlib's own network: they are stored for years and must be
        # reproducible by face_recognition itself.
        encoding: Encoding = self._encode(found.images, [face], exact=True)[0]
        if not np.all(np.isfinite(encoding)):
            raise EnrolmentRejected("This photo could not be used; try another photo")
        return encoding


@lru_cache(maxsize=8)
def get_engine(config: EngineConfig) -> FaceEngine:
    """One engine per distinct config per process (models are shared between them)."""
    return FaceEngine(config)
