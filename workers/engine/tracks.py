"""Faces of one person across consecutive video frames, and the decision of a track.

Every decoded frame is searched for faces, but only the best few faces of each track
are encoded (``FaceEngine.screen_video``), and every face of the track then carries the
track's decision. That makes linking a safety matter, and these rules follow from it:

1. **When in doubt, split.** Two people linked into one track would let one of them be
   published on the other's match, unseen by the encoder. One person split into two
   tracks costs only an extra encoding. So a face joins a track only if all of these
   hold: at most ``MAX_GAP`` frames were missed since the track's last face; the boxes overlap
   (IoU >= ``MIN_IOU``) or the centre moved at most ``CENTRE_STEP`` face heights per
   frame; the heights differ by at most ``SIZE_RATIO``; the face crops look alike
   (colour histograms, ``MAX_LOOK_DISTANCE``). And the pairing must be unambiguous:
   a face that could continue two tracks, or a track that two faces could continue,
   continues nothing: each such face starts a new track, and those tracks end.
2. **A cut ends every track** (``is_cut``: the picture changed wholesale between two
   frames). A face in the same place after a cut is a new track.
3. **A track is looked at throughout.** Its best face in every segment of about half
   a second is encoded (``segment_of``), not only the best faces overall, so a wrong
   link that slipped past rule 1 is caught within a segment wherever a face in it can
   be encoded.
4. **A track is matched only if every encoded face of it is matched to the same
   pupil** (``decide_track``). Any disagreement (two pupils, or matched in one look
   and unknown or uncertain in another) makes the whole track ``uncertain``, with
   every pupil any look came within threshold + margin of as candidates, so that
   their consent can still decide. All looks unknown: ``unknown``. No face of the
   track passes the quality floor: ``uncertain`` (never matched on a face we could not
   judge). An empty gallery makes a judgeable track ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from workers.engine.match import Decision
from workers.engine.types import Box, Candidates, MatchStatus, RGBImage, box_iou

FloatArray = npt.NDArray[np.float32]

# A face missed by the detector for up to this many frames (blink, motion blur, a hand)
# does not end its track.
MAX_GAP = 3
# Linking tests, per rule 1 above. At 25-60 fps a face moves a small part of its own
# height between frames; CENTRE_STEP allows a brisk walk across a 640 px frame in 2 s
# for a 30 px face.
MIN_IOU = 0.3
CENTRE_STEP = 0.4  # face heights per frame
SIZE_RATIO = 1.3
# Bhattacharyya distance between hue-saturation histograms of the two face crops.
# Measured on the shared clip: the same face in consecutive frames (IoU > 0.5) is at
# median 0.04, 99th percentile 0.32 (max 0.61, a turning head under stage light);
# two different faces in one frame at 1st percentile 0.09, 10th 0.20. So this splits
# about 1% of true continuations (safe: one more encoding) and only catches gross
# changes of look; telling similar faces apart is the encoder's job (rule 3).
MAX_LOOK_DISTANCE = 0.45
# Cut detection: mean absolute difference of 64x36 grey thumbnails, in grey levels, or
# Bhattacharyya distance of their 32-bin grey histograms. On the shared clip its three
# cuts measure 27.7-30.5 and 0.24-0.39; every other frame pair at most 13.6 and 0.074.
# Set low: a false cut only splits tracks.
CUT_MEAN_DIFF = 20.0
CUT_HIST_DISTANCE = 0.2
# Segment length for rule 3, in seconds of the container's frame rate.
SEGMENT_S = 0.5

_THUMB = (64, 36)
_HIST_BINS = [12, 8]
_HIST_RANGES = [0, 180, 0, 256]


def appearance(rgb: RGBImage, box: Box) -> FloatArray:
    """Normalised hue-saturation histogram of the middle of a face box (units: none)."""
    top, right, bottom, left = box
    # The middle 60%: less background and hair, which change as a head turns.
    dy, dx = (bottom - top) // 5, (right - left) // 5
    y0, x0 = top + dy, left + dx
    crop = rgb[y0 : max(y0 + 1, bottom - dy), x0 : max(x0 + 1, right - dx)]
    if crop.size == 0:
        return np.zeros(_HIST_BINS[0] * _HIST_BINS[1], np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, _HIST_BINS, _HIST_RANGES).ravel()
    total = float(hist.sum())
    return np.asarray(hist / total if total > 0 else hist, np.float32)


def look_distance(a: FloatArray, b: FloatArray) -> float:
    """Bhattacharyya distance of two `appearance` histograms, 0 (same) to 1."""
    if not a.any() or not b.any():
        return 1.0
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def frame_signature(rgb: RGBImage) -> FloatArray:
    """A 64x36 grey thumbnail of the frame, for `is_cut`."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.asarray(cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA), np.float32)


def is_cut(previous: FloatArray, current: FloatArray) -> bool:
    """Whether the picture changed wholesale between two consecutive frames."""
    if previous.shape != current.shape:
        return True
    if float(np.abs(previous - current).mean()) > CUT_MEAN_DIFF:
        return True
    ha = cv2.calcHist([previous], [0], None, [32], [0, 256])
    hb = cv2.calcHist([current], [0], None, [32], [0, 256])
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_BHATTACHARYYA)) > CUT_HIST_DISTANCE


def segment_of(frame: int, track_start: int, segment_frames: int) -> int:
    return (frame - track_start) // max(1, segment_frames)


def _linkable(a: Box, b: Box, gap: int) -> bool:
    ha, hb = a[2] - a[0], b[2] - b[0]
    if min(ha, hb) <= 0 or max(ha, hb) > SIZE_RATIO * min(ha, hb):
        return False
    if box_iou(a, b) >= MIN_IOU:
        return True
    dx = (a[1] + a[3] - b[1] - b[3]) / 2
    dy = (a[0] + a[2] - b[0] - b[2]) / 2
    return bool((dx * dx + dy * dy) ** 0.5 <= CENTRE_STEP * gap * max(ha, hb))


@dataclass(slots=True)
class _Open:
    start: int
    last_frame: int
    box: Box
    look: FloatArray


@dataclass(slots=True)
class Tracker:
    """Links faces frame by frame, in frame order. Track ids are 0, 1, 2, ... in order of
    their first face."""

    _open: dict[int, _Open] = field(default_factory=dict)
    _next: int = 0
    starts: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self._next

    def cut(self) -> list[int]:
        """End every open track (a cut); returns the ended tracks."""
        ended = sorted(self._open)
        self._open.clear()
        return ended

    def add_frame(
        self, frame: int, boxes: Sequence[Box], looks: Sequence[FloatArray]
    ) -> tuple[list[int], list[int]]:
        """(track id per box, tracks that ended before this frame). ``frame`` must
        increase from call to call; call for every frame, with or without faces."""
        # frame - last_frame - 1 frames were missed in between.
        ended = [t for t, o in self._open.items() if frame - o.last_frame - 1 > MAX_GAP]
        for t in ended:
            del self._open[t]
        # Candidate pairs by rule 1; only pairs unique on both sides are linked.
        of_face: list[list[int]] = [[] for _ in boxes]
        of_track: dict[int, list[int]] = {}
        for i, (box, look) in enumerate(zip(boxes, looks, strict=True)):
            for t, o in self._open.items():
                if _linkable(o.box, box, frame - o.last_frame) and (
                    look_distance(o.look, look) <= MAX_LOOK_DISTANCE
                ):
                    of_face[i].append(t)
                    of_track.setdefault(t, []).append(i)
        ids: list[int] = []
        for i, (box, look) in enumerate(zip(boxes, looks, strict=True)):
            tracks = of_face[i]
            if len(tracks) == 1 and len(of_track[tracks[0]]) == 1:
                t = tracks[0]
                self._open[t] = _Open(self._open[t].start, frame, box, look)
            else:
                t = self._next
                self._next += 1
                self.starts[t] = frame
                self._open[t] = _Open(frame, frame, box, look)
            ids.append(t)
        # A track two faces could continue has been left for new tracks: end it now.
        for t, faces in of_track.items():
            if len(faces) > 1 and t in self._open:
                del self._open[t]
                ended.append(t)
        for i, tracks in enumerate(of_face):
            if len(tracks) > 1:
                for t in tracks:
                    if t in self._open and t != ids[i]:
                        del self._open[t]
                        ended.append(t)
        return ids, sorted(set(ended))


@dataclass(frozen=True, slots=True)
class TrackDecision:
    status: MatchStatus
    pupil_id: str | None
    distance: float | None
    candidates: Candidates


def decide_track(
    looks: Sequence[Decision], *, judgeable: bool, gallery_empty: bool
) -> TrackDecision:
    """Rule 4 above. ``looks`` are the decisions on the track's encoded faces;
    ``judgeable`` whether any face of it passed the quality floor."""
    if not judgeable:
        return TrackDecision("uncertain", None, None, ())
    if gallery_empty:
        return TrackDecision("unknown", None, None, ())
    if not looks:
        # Judgeable faces exist but none was encoded: cannot happen in the engine;
        # fail closed if it ever does.
        return TrackDecision("uncertain", None, None, ())
    distances = [d.distance for d in looks if d.distance is not None]
    nearest = min(distances) if distances else None
    pupils = {d.pupil_id for d in looks}
    if all(d.status == "matched" for d in looks) and len(pupils) == 1:
        return TrackDecision("matched", looks[0].pupil_id, nearest, ())
    best: dict[str, float] = {}
    for d in looks:
        pairs: Candidates = d.candidates
        if d.status == "matched" and d.pupil_id is not None and d.distance is not None:
            pairs = ((d.pupil_id, d.distance),)
        for pid, dist in pairs:
            best[pid] = min(dist, best.get(pid, dist))
    candidates = tuple(sorted(best.items(), key=lambda c: (c[1], c[0])))
    status: MatchStatus = "unknown" if all(d.status == "unknown" for d in looks) else "uncertain"
    return TrackDecision(status, None, nearest, candidates)
