"""Data that crosses the face engine's boundary.

Conventions, stated once for the whole engine:

* Images are ``numpy.ndarray`` of dtype ``uint8``, shape ``(H, W, 3)``, **RGB**
  order, C-contiguous, already rotated by their EXIF orientation. OpenCV
  functions want BGR: convert at the call site, never store BGR.
* Boxes are ``(top, right, bottom, left)`` in integer pixels of that oriented
  image (face_recognition's order), clipped to the image.
* Encodings are dlib's 128-d face descriptors, ``float64``; distances are
  Euclidean between them.
* ``frame`` is 0 for still images and, for videos, the frame's number in decoding
  order (0..N-1, as ``imaging.iter_video_frames`` numbers them), never a number
  derived from the container's claimed frame rate.
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


# (pupil_id, distance) pairs, nearest first.
Candidates = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class ScreenedFace:
    """One face found in one frame, and what screening decided about it.

    ``distance`` is the distance to the nearest pupil's nearest template (None if the
    face was not encoded). ``candidates`` are, for an encoded face that is not
    ``matched``, every pupil within threshold + margin of it, nearest first: who it
    might be, so that their consent can still decide. Empty for matched faces and for
    faces never encoded. ``track`` numbers the faces of one person across the frames of
    a video (None for stills); every face of a track has the track's decision.
    New fields go at the end with defaults: callers construct this positionally.
    """

    box: Box
    frame: int
    status: MatchStatus
    pupil_id: str | None
    distance: float | None
    candidates: Candidates = ()
    track: int | None = None


@dataclass(frozen=True, slots=True)
class VideoScreening:
    """The outcome of screening every decoded frame of a video.

    ``frames_decoded`` is the number of frames the decoder yielded, which were all
    screened (numbered 0..frames_decoded-1); a copier must refuse to publish if its own
    pass over ``imaging.iter_video_frames`` yields a different number. ``frames_claimed``
    is the container's frame count (None if it gives none), which may be wrong.
    ``truncated``: the decoder stopped on an error, or yielded fewer frames than the
    container claims by more than ``TRUNCATION_SLACK``; what was decoded is still
    screened, but the rest of the file was never seen. ``fps`` is the container's rate
    (or a fallback), for the copier's timing only.
    """

    faces: list[ScreenedFace]
    frames_decoded: int
    frames_claimed: int | None
    truncated: bool
    fps: float
    tracks: int = 0
    decode_error: str | None = None


# Muxers estimate frame counts from durations; a frame or two short is not truncation.
TRUNCATION_SLACK = 2


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    """One stored template of a pupil whose biometric consent is current."""

    pupil_id: str
    encoding: Encoding


class EnrolmentRejected(Exception):
    """A reference photo that cannot become a template; `reason` is shown to the user,
    `code` names the gate that refused it (no_face, several_faces, unclear_face, too_small,
    blurred, turned_away, unusable) and `data` its measured values (numbers about the
    photo only, never an encoding), for callers that answer with codes."""

    def __init__(self, reason: str, code: str = "unusable", **data: float | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.data = data


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
