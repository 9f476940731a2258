"""Linking faces across consecutive video frames, and the decision of a track (tracks.py)."""

from __future__ import annotations

import cv2
import numpy as np

from workers.engine.match import Decision
from workers.engine.tracks import (
    MAX_GAP,
    Tracker,
    appearance,
    decide_track,
    frame_signature,
    is_cut,
)
from workers.engine.types import Box


def at(x: int, y: int, h: int = 100) -> Box:
    """(top, right, bottom, left) of an h-tall, 0.8h-wide box with its top-left at x, y."""
    return (y, x + int(0.8 * h), y + h, x)


def look(hue: int) -> np.ndarray:
    """The appearance histogram of a face box filled with one saturated colour."""
    hsv = np.full((100, 80, 3), (hue, 200, 200), np.uint8)
    rgb = np.ascontiguousarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))
    return appearance(rgb, (0, 80, 100, 0))


SKIN, BLUE = look(10), look(110)


def run(tracker: Tracker, frames: list[list[tuple[Box, np.ndarray]]]) -> list[list[int]]:
    out = []
    for index, faces in enumerate(frames):
        ids, _ended = tracker.add_frame(index, [b for b, _ in faces], [v for _, v in faces])
        out.append(ids)
    return out


def test_a_face_moving_frame_by_frame_is_one_track_and_a_second_face_another() -> None:
    frames = [[(at(100 + 6 * i, 100), SKIN), (at(400, 120 + i), SKIN)] for i in range(30)]
    ids = run(Tracker(), frames)
    assert {row[0] for row in ids} == {0}
    assert {row[1] for row in ids} == {1}


def test_a_face_missed_for_a_few_frames_keeps_its_track_but_not_for_longer() -> None:
    box = at(100, 100)
    frames: list[list[tuple[Box, np.ndarray]]] = [[(box, SKIN)]] + [[]] * MAX_GAP + [[(box, SKIN)]]
    assert [row for row in run(Tracker(), frames) if row] == [[0], [0]]
    frames = [[(box, SKIN)]] + [[]] * (MAX_GAP + 1) + [[(box, SKIN)]]
    assert [row for row in run(Tracker(), frames) if row] == [[0], [1]]


def test_a_jump_a_size_change_or_a_different_look_starts_a_new_track() -> None:
    for second in [(at(300, 100), SKIN), (at(100, 100, h=140), SKIN), (at(100, 100), BLUE)]:
        ids = run(Tracker(), [[(at(100, 100), SKIN)], [second]])
        assert ids == [[0], [1]], second


def test_a_cut_ends_every_track() -> None:
    tracker = Tracker()
    tracker.add_frame(0, [at(100, 100)], [SKIN])
    assert tracker.cut() == [0]
    ids, _ = tracker.add_frame(1, [at(100, 100)], [SKIN])
    assert ids == [1]


def test_ambiguous_links_split_rather_than_guess() -> None:
    # Two faces that could both continue one track: neither does, and it ends.
    tracker = Tracker()
    tracker.add_frame(0, [at(100, 100)], [SKIN])
    ids, ended = tracker.add_frame(1, [at(90, 100), at(125, 100)], [SKIN, SKIN])
    assert ids == [1, 2] and ended == [0]
    # One face that could continue either of two tracks: it starts a third.
    tracker = Tracker()
    tracker.add_frame(0, [at(100, 100), at(170, 100)], [SKIN, SKIN])
    ids, ended = tracker.add_frame(1, [at(135, 100)], [SKIN])
    assert ids == [2] and ended == [0, 1]


def test_cuts_are_told_from_motion() -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    moved = np.roll(scene, 4, axis=1)
    other = np.full((360, 640, 3), 30, np.uint8)
    assert not is_cut(frame_signature(scene), frame_signature(moved))
    assert is_cut(frame_signature(scene), frame_signature(other))


def matched(pupil: str, d: float = 0.3) -> Decision:
    return Decision("matched", pupil, d, ())


def test_a_track_is_matched_only_when_every_look_agrees() -> None:
    out = decide_track([matched("amy", 0.3), matched("amy", 0.25)], judgeable=True,
                       gallery_empty=False)
    assert (out.status, out.pupil_id, out.distance, out.candidates) == (
        "matched", "amy", 0.25, ())


def test_two_pupils_in_one_track_make_it_uncertain_with_both_as_candidates() -> None:
    out = decide_track([matched("amy", 0.3), matched("bea", 0.35)], judgeable=True,
                       gallery_empty=False)
    assert (out.status, out.pupil_id) == ("uncertain", None)
    assert out.candidates == (("amy", 0.3), ("bea", 0.35))


def test_matched_once_and_unknown_once_is_uncertain_and_keeps_the_pupil_as_candidate() -> None:
    unknown = Decision("unknown", None, 0.52, (("amy", 0.52),))
    out = decide_track([matched("amy", 0.4), unknown], judgeable=True, gallery_empty=False)
    assert (out.status, out.pupil_id, out.candidates) == ("uncertain", None, (("amy", 0.4),))


def test_unknown_throughout_unjudgeable_and_empty_gallery() -> None:
    unknown = Decision("unknown", None, 0.8, ())
    assert decide_track([unknown, unknown], judgeable=True, gallery_empty=False).status == (
        "unknown")
    assert decide_track([], judgeable=False, gallery_empty=False).status == "uncertain"
    assert decide_track([], judgeable=False, gallery_empty=True).status == "uncertain"
    assert decide_track([], judgeable=True, gallery_empty=True).status == "unknown"
    assert decide_track([], judgeable=True, gallery_empty=False).status == "uncertain"
