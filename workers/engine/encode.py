"""Face descriptors and the quality measures that decide whether a face may be encoded.

The descriptor is face_recognition's: the same model files (``face_recognition_models``),
the 5-point shape predictor (``model="small"``) and ``num_jitters=1``, so an encoding
here equals ``face_recognition.face_encodings(rgb, [box], 1, "small")`` for the same box
(tests/engine/test_engine_faces.py checks this). Templates may be computed with
``num_jitters > 1`` (``EngineConfig.enrol_jitters``): dlib then averages the descriptors
of that many randomly shifted, rotated, scaled and mirrored copies of the chip
(``dlib.jitter_image``; the random generator belongs to the loaded network, so two runs
differ slightly). That is always dlib's own network, never the onnxruntime one.

We call dlib directly so that all faces of an image go through the network in one batch,
and so that the 68-point predictor and the CNN detector, which face_recognition loads on
import, are never loaded.

Screening runs the descriptor network itself in onnxruntime (``resnet.py``), about 15x
faster than the BLAS-less dlib-bin wheel, on dlib's own landmarks and chips; templates
(``exact=True``) still come from dlib's network. The two agree to float32 rounding, and
are compared on sample chips when the models load: on any disagreement dlib does all.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from workers.engine.detect import Detection
from workers.engine.resnet import CHIP_PADDING, CHIP_SIDE, DescriptorNet
from workers.engine.types import RGBImage

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

ENCODING_DIM = 128

# CenterFace boxes are taller than dlib HOG boxes (forehead to chin, h/w ~ 1.37) and the
# shape predictor starts from its mean shape placed in the box. Least-squares fit over
# CenterFace/HOG pairs on the shared media (bench/calibrate.py): HOG box is a square of
# side 1.09 x CenterFace width, centred 0.058 x CenterFace height lower.
DLIB_BOX_SIDE_PER_WIDTH = 1.09
DLIB_BOX_DOWN_PER_HEIGHT = 0.058

# Side in px of the grey face crop on which sharpness is measured, so the value does not
# depend on how many pixels the face has.
SHARPNESS_SIDE = 128


def dlib_like_box(det: Detection) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the dlib-HOG-shaped square for a CenterFace detection."""
    side = DLIB_BOX_SIDE_PER_WIDTH * det.width
    cx = (det.x1 + det.x2) / 2
    cy = (det.y1 + det.y2) / 2 + DLIB_BOX_DOWN_PER_HEIGHT * det.height
    half = side / 2
    return (round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def sharpness(rgb: RGBImage, det: Detection) -> float:
    """Variance of the Laplacian of the face crop, grey, resized to SHARPNESS_SIDE square.

    Low for blur and for very dim faces alike; both are faces we cannot judge.
    """
    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(det.x1)), max(0, int(det.y1))
    x2, y2 = min(w, int(np.ceil(det.x2))), min(h, int(np.ceil(det.y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    shrinking = (x2 - x1) > SHARPNESS_SIDE
    grey = cv2.resize(
        grey,
        (SHARPNESS_SIDE, SHARPNESS_SIDE),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def yaw_proxy(landmarks: FloatArray) -> float:
    """Signed sideways offset of the nose tip from the centre of eyes and mouth corners,
    along the eye line, in units of the inter-ocular distance.

    About 0 for a frontal face, +-0.3 at ~30 degrees, beyond +-1 for three-quarter and
    profile views (where the detector's landmarks also become unreliable). Roll-invariant.
    """
    left_eye, right_eye, nose, mouth_l, mouth_r = landmarks
    eye_vec = right_eye - left_eye
    iod = float(np.hypot(eye_vec[0], eye_vec[1]))
    if not np.isfinite(iod) or iod < 1e-6:
        return float("inf")
    centre = (left_eye + right_eye + mouth_l + mouth_r) / 4
    return float(np.dot(nose - centre, eye_vec / iod) / iod)


def upright_turns(landmarks: FloatArray) -> int:
    """Quarter turns k such that ``np.rot90(image, k)`` shows this face upright.

    From the direction eyes -> mouth, which points down the image (+y) for an upright
    face; within 45 degrees of that counts as upright (dlib's alignment handles the rest).
    """
    left_eye, right_eye, _nose, mouth_l, mouth_r = landmarks
    dx, dy = (mouth_l + mouth_r) / 2 - (left_eye + right_eye) / 2
    if abs(dy) >= abs(dx):
        return 0 if dy >= 0 else 2
    # Chin towards +x: turning the image clockwise (k=3) brings it down; towards -x, k=1.
    return 3 if dx > 0 else 1


def frontal_ratio(landmarks: FloatArray) -> float:
    """Inter-ocular distance over the eye-centre to mouth-centre distance.

    About 0.8-1.25 for a frontal face, falling roughly with the cosine of the yaw angle
    (0.1-0.4 on the profile and three-quarter faces of the shared video). It catches turned
    heads that ``yaw_proxy`` misses, because the detector's landmarks on a profile
    collapse onto the visible side and the nose then looks centred.
    """
    left_eye, right_eye, _nose, mouth_l, mouth_r = landmarks
    iod = float(np.hypot(*(right_eye - left_eye)))
    eye_mouth = float(np.hypot(*((mouth_l + mouth_r) / 2 - (left_eye + right_eye) / 2)))
    if not (np.isfinite(iod) and np.isfinite(eye_mouth)) or eye_mouth < 1e-6:
        return 0.0
    return iod / eye_mouth


# Largest difference per descriptor component allowed between onnxruntime and dlib on
# the check chips. Float32 summation order alone gives about 1e-6 (docs/calibration.md);
# a wiring or weight error gives differences of order 0.01-1.
_CHECK_TOLERANCE = 1e-5

_dlib_models: tuple[Any, Any] | None = None
_dlib_lock = threading.Lock()


def _model_paths() -> tuple[str, str]:
    """(5-point shape predictor, descriptor network) files of face_recognition_models."""
    with warnings.catch_warnings():
        # face_recognition_models imports the deprecated pkg_resources.
        warnings.simplefilter("ignore", UserWarning)
        import face_recognition_models as frm
    return frm.pose_predictor_five_point_model_location(), frm.face_recognition_model_location()


def _load_dlib_models() -> tuple[Any, Any]:
    """(5-point shape predictor, descriptor network), once per process."""
    global _dlib_models
    with _dlib_lock:
        if _dlib_models is None:
            predictor_path, net_path = _model_paths()
            _dlib_models = (dlib.shape_predictor(predictor_path),
                            dlib.face_recognition_model_v1(net_path))
        return _dlib_models


def _check_chips() -> npt.NDArray[np.uint8]:
    """Fixed chips that drive every channel of the network: noise, and smooth shading."""
    rng = np.random.default_rng(20240611)
    noise = rng.integers(0, 256, (CHIP_SIDE, CHIP_SIDE, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:CHIP_SIDE, 0:CHIP_SIDE]
    shade = np.stack([xx * 255 // CHIP_SIDE, yy * 255 // CHIP_SIDE,
                      (xx + yy) * 255 // (2 * CHIP_SIDE)], axis=2).astype(np.uint8)
    return np.stack([noise, shade])


def _load_fast_net(dlib_net: Any, threads: int) -> DescriptorNet | None:
    """The onnxruntime network, or None (dlib then computes every descriptor) if it
    cannot be built or does not reproduce dlib on the check chips."""
    try:
        fast = DescriptorNet.load(Path(_model_paths()[1]), threads=threads)
        chips = _check_chips()
        ours = fast.descriptors(chips)
        theirs = np.array([np.asarray(d) for d in dlib_net.compute_face_descriptor(list(chips))])
        worst = float(np.max(np.abs(ours - theirs)))
        if not worst <= _CHECK_TOLERANCE:
            raise ValueError(f"differs from dlib by up to {worst:.2e}")
    except Exception:
        log.exception("descriptor network on onnxruntime not used; dlib computes descriptors")
        return None
    return fast


class Encoder:
    """dlib's 5-point shape predictor and descriptor network, loaded on first use; the
    network also on onnxruntime with ``threads`` intra-op threads (see module doc)."""

    def __init__(self, threads: int = 1) -> None:
        self._threads = max(1, threads)
        self._fast: DescriptorNet | None = None
        self._loaded = False
        self._lock = threading.Lock()

    def _fast_net(self) -> DescriptorNet | None:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._fast = _load_fast_net(_load_dlib_models()[1], self._threads)
                    self._loaded = True
        return self._fast

    @property
    def fast(self) -> bool:
        """Whether descriptors (other than ``exact`` ones) come from onnxruntime."""
        return self._fast_net() is not None

    def warm_up(self) -> None:
        _load_dlib_models()
        self._fast_net()

    def encode(
        self,
        rgb: RGBImage,
        dets: Sequence[Detection],
        *,
        num_jitters: int = 1,
        exact: bool = False,
    ) -> FloatArray:
        """(n, 128) float64 descriptors, one per detection, in order. ``exact`` uses
        dlib's own network, as face_recognition does (for templates)."""
        if not dets:
            return np.empty((0, ENCODING_DIM), dtype=np.float64)
        predictor, net = _load_dlib_models()
        # Loaded only when first needed: the API process makes templates only.
        fast = None if exact or num_jitters != 1 else self._fast_net()
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        shapes = dlib.full_object_detections()
        for det in dets:
            left, top, right, bottom = dlib_like_box(det)
            shapes.append(predictor(img, dlib.rectangle(left, top, right, bottom)))
        if fast is not None:
            # The chips compute_face_descriptor would cut (same function, size, padding).
            chips = dlib.get_face_chips(img, shapes, size=CHIP_SIDE, padding=CHIP_PADDING)
            return fast.descriptors(np.stack(chips)).reshape(len(dets), ENCODING_DIM)
        descriptors = net.compute_face_descriptor(img, shapes, num_jitters)
        out = np.array([np.asarray(d, dtype=np.float64) for d in descriptors], dtype=np.float64)
        return out.reshape(len(dets), ENCODING_DIM)


# A face offered as an extra template (SLT naming a face in an event photo) is cut out
# with this much of its box size added on each side: enough forehead, chin and
# background for the detector to find it again in the crop, little enough that a
# neighbour's face rarely enters it. The crop then passes the same enrolment gate as a
# reference photo (one face, size, sharpness, pose) before it becomes a template.
TEMPLATE_CROP_MARGIN = 0.5


def crop_for_template(rgb: RGBImage, box: tuple[int, int, int, int]) -> RGBImage:
    """The region of ``rgb`` around ``box`` (top, right, bottom, left, in image pixels)
    grown by TEMPLATE_CROP_MARGIN of its height and width on each side, clipped to the
    image; a copy, so the full image can be freed."""
    top, right, bottom, left = box
    h, w = rgb.shape[:2]
    dy = TEMPLATE_CROP_MARGIN * max(0, bottom - top)
    dx = TEMPLATE_CROP_MARGIN * max(0, right - left)
    y1, y2 = max(0, int(top - dy)), min(h, int(np.ceil(bottom + dy)))
    x1, x2 = max(0, int(left - dx)), min(w, int(np.ceil(right + dx)))
    return np.ascontiguousarray(rgb[y1:y2, x1:x2]).copy()
