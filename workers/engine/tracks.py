"""Faces of one person across the sampled frames of a video, and what follows from them.

Faces in successive sampled frames (0.5 s apart at 2 fps) are linked into a track when
their boxes overlap or sit close, at a similar size. The one rule applied to tracks:

* A track matched to **two or more different pupils** is evidence that at least one of
  those matches is false (one face cannot be two children). Every matched face in it
  becomes ``uncertain``, so the video goes to review instead of being published on
  the consent of pupils who may not be in it.

Not applied, deliberately: a track matched to one pupil in some frames and unknown or
uncertain in others keeps its matched frames. The unknown frames already block the
video; the matched frames keep the pupil, so that pupil's consent still decides and
SLT cannot clear those faces as "nobody we know" (services/review/decisions.py).
Turning them into ``uncertain`` would remove exactly that protection.

Linking errs either way without loss of safety: two people merged into one track can
only turn matches into ``uncertain`` (review), and one person split into two tracks
is judged frame by frame, as without tracks.
"""

from __future__ import annotations

from dataclasses import replace

from workers.engine.types import Box, ScreenedFace, box_iou

# Link a face to a track whose last face is at most this many sampled frames back
# (a face missed once, e.g. turned away, does not end its track).
MAX_GAP = 2
# Same person if IoU >= this, or if the centres are within CENTRE_DISTANCE box heights
# and the heights differ by at most SIZE_RATIO.
MIN_IOU = 0.3
CENTRE_DISTANCE = 1.0
SIZE_RATIO = 1.5


def _close(a: Box, b: Box) -> bool:
    ha, hb = a[2] - a[0], b[2] - b[0]
    if min(ha, hb) <= 0 or max(ha, hb) > SIZE_RATIO * min(ha, hb):
        return False
    dx = (a[1] + a[3] - b[1] - b[3]) / 2
    dy = (a[0] + a[2] - b[0] - b[2]) / 2
    return bool((dx * dx + dy * dy) ** 0.5 <= CENTRE_DISTANCE * max(ha, hb))


def link(faces: list[ScreenedFace], sampled: list[int]) -> list[int]:
    """A track number per face (same order as ``faces``, which is in frame order);
    ``sampled`` is every sampled frame index, with or without faces."""
    position = {frame: i for i, frame in enumerate(sorted(sampled))}
    frames = sorted({f.frame for f in faces}, key=position.__getitem__)
    track_of = [-1] * len(faces)
    # track -> (sampled-frame position, box) of its latest face
    last: dict[int, tuple[int, Box]] = {}
    by_frame: dict[int, list[int]] = {}
    for i, face in enumerate(faces):
        by_frame.setdefault(face.frame, []).append(i)
    for frame in frames:
        pos = position[frame]
        candidates = [t for t, (p, _) in last.items() if 0 < pos - p <= MAX_GAP]
        pairs = []
        for i in by_frame[frame]:
            for t in candidates:
                box = last[t][1]
                iou = box_iou(faces[i].box, box)
                if iou >= MIN_IOU or _close(faces[i].box, box):
                    # Prefer overlap, then the most recent track.
                    pairs.append((iou, last[t][0], i, t))
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        for _iou_value, _p, i, t in sorted(pairs, reverse=True):
            if i in taken_faces or t in taken_tracks:
                continue
            track_of[i] = t
            taken_faces.add(i)
            taken_tracks.add(t)
        for i in by_frame[frame]:
            if track_of[i] < 0:
                track_of[i] = len(last)
            last[track_of[i]] = (pos, faces[i].box)
    return track_of


def apply_track_rules(
    faces: list[ScreenedFace], sampled: list[int]
) -> tuple[list[ScreenedFace], int]:
    """The faces with the track rule above applied, and how many tracks it changed."""
    tracks = link(faces, sampled)
    pupils: dict[int, set[str]] = {}
    for face, track in zip(faces, tracks, strict=True):
        if face.status == "matched" and face.pupil_id is not None:
            pupils.setdefault(track, set()).add(face.pupil_id)
    conflicted = {t for t, ids in pupils.items() if len(ids) > 1}
    out = [
        replace(face, status="uncertain", pupil_id=None)
        if track in conflicted and face.status == "matched" else face
        for face, track in zip(faces, tracks, strict=True)
    ]
    return out, len(conflicted)
