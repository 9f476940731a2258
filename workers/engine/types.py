"""Data that crosses the face engine's boundary.

Conventions, stated once for the whole engine:

* Images are ``numpy.ndarray`` of dtype ``uint8``, shape ``(H, W, 3)``, **RGB**
  order, C-contiguous, already rotated by their EXIF orientation. OpenCV
  functions want BGR: convert at the call site, never store BGR.
* Boxes are ``(top, right, bottom, left)`` in integer pixels of that oriented
  image (face_recognition's order), clipped to the image.
* Encodings are dlib's 128-d face descriptors, ``float64``; distances are
  Euclidean between them.
* ``frame`` is 0 for still images and the source frame index for videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

RGBImage = npt.NDArray[np.uint8]
Encoding = npt.NDArray[np.float64]
Box = tuple[int, int, int, int]

# Outcome of open-set matching of one face against an organisation's gallery.
#   matched:   nearest identity within threshold and clearly nearer than the next one
#   unknown:   nobody within threshold
#   uncertain: too small/blurred/turned to judge, or two identities too close to call
MatchStatus = Literal["matched", "unknown", "uncertain"]


@dataclass(frozen=True, slots=True)
class ScreenedFace:
    box: Box
    frame: int
    status: MatchStatus
    pupil_id: str | None
    distance: float | None


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    """One stored template of a pupil whose biometric consent is current."""

    pupil_id: str
    encoding: Encoding


class EnrolmentRejected(Exception):
    """A reference photo that cannot become a template; `reason` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (top, right, bottom, left) boxes, in [0, 1]."""
    at, ar, ab, al = a
    bt, br, bb, bl = b
    w = min(ar, br) - max(al, bl)
    h = min(ab, bb) - max(at, bt)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (ar - al) * (ab - at) + (br - bl) * (bb - bt) - inter
    return float(inter / union) if union > 0 else 0.0
