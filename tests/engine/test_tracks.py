"""Linking video faces across sampled frames, and the one rule tracks add (tracks.py)."""

from __future__ import annotations

from workers.engine.tracks import apply_track_rules, link
from workers.engine.types import Box, MatchStatus, ScreenedFace

SAMPLED = list(range(0, 280, 14))  # every 14th frame, as the 29.97 fps clip at 2 fps


def face(frame: int, box: Box, status: MatchStatus = "unknown",
         pupil: str | None = None) -> ScreenedFace:
    return ScreenedFace(box, frame, status, pupil, 0.4 if pupil else None)


def at(x: int, y: int, h: int = 100) -> Box:
    """(top, right, bottom, left) of an h-tall, 0.8h-wide box with its top-left at x, y."""
    return (y, x + int(0.8 * h), y + h, x)


def test_a_face_moving_between_samples_is_one_track_and_a_second_face_another() -> None:
    faces = [
        face(0, at(100, 100)), face(0, at(400, 120)),
        face(14, at(130, 110)), face(14, at(400, 125)),  # the first moved 30 px
        face(28, at(200, 60)),  # and again, 80 px; the second is not seen in this frame
        face(42, at(405, 118)),  # the second again, one sampled frame later
    ]
    tracks = link(faces, SAMPLED)
    assert tracks[0] == tracks[2] == tracks[4]
    assert tracks[1] == tracks[3] == tracks[5]
    assert tracks[0] != tracks[1]


def test_a_face_gone_for_long_or_far_away_starts_a_new_track() -> None:
    faces = [face(0, at(100, 100)), face(56, at(100, 100)), face(70, at(600, 100)),
             face(84, at(600, 100, h=300))]
    tracks = link(faces, SAMPLED)
    # Gone for three sampled frames; then 500 px away; then three times the size.
    assert len(set(tracks)) == 4


def test_a_face_matched_to_two_pupils_is_uncertain_in_every_frame() -> None:
    faces = [face(0, at(100, 100), "matched", "amy"), face(14, at(110, 100), "matched", "bea"),
             face(28, at(120, 100), "matched", "amy"), face(28, at(500, 100), "matched", "cat")]
    out, conflicts = apply_track_rules(faces, SAMPLED)
    assert conflicts == 1
    assert [(f.status, f.pupil_id) for f in out] == [
        ("uncertain", None), ("uncertain", None), ("uncertain", None), ("matched", "cat")]
    assert [f.box for f in out] == [f.box for f in faces]
    assert [f.frame for f in out] == [0, 14, 28, 28]


def test_matched_frames_of_a_track_also_seen_unknown_keep_their_pupil() -> None:
    # The unknown frame blocks the video by itself; the matched frames must keep the pupil
    # so that the pupil's own consent still decides and SLT cannot clear them.
    faces = [face(0, at(100, 100), "matched", "amy"), face(14, at(105, 100), "unknown"),
             face(28, at(110, 100), "uncertain")]
    out, conflicts = apply_track_rules(faces, SAMPLED)
    assert conflicts == 0
    assert out == faces


def test_no_faces_no_tracks() -> None:
    assert link([], SAMPLED) == []
    assert apply_track_rules([], SAMPLED) == ([], 0)
