"""Every decoded video frame is screened (FaceEngine.screen_video), on generated clips.

The clips are composites made with bench/synth.py from the public adult faces in
../shared/faces: person A (obama, cut from an event photo) in every frame, person B
(biden, never enrolled) only in frames a 2 fps sampler would skip. The gallery holds A
alone, from his enrol/ photos.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import synth
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.errors import UndecodableMedia
from workers.engine.imaging import decode_image, iter_video_frames, probe_video
from workers.engine.match import Gallery
from workers.engine.types import Box, GalleryEntry, ScreenedFace, VideoScreening, box_iou

pytestmark = pytest.mark.faces

MAX_PIXELS = 100_000_000
FPS = 30.0
FRAMES = 90  # 3 s
# Never on a multiple of 15, where a 2 fps sampler of 30 fps video looks.
B_FRAMES = [*range(3, 13), *range(18, 28)]
Truth = dict[int, tuple[Box | None, Box | None]]


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine(EngineConfig())


@pytest.fixture(scope="module")
def people(faces: Path, engine: FaceEngine) -> tuple[synth.FaceCut, synth.FaceCut]:
    cuts = synth.cut_faces(faces, engine)
    a = next(c for c in cuts if c.person == "obama" and c.source.startswith("events/obama1"))
    b = next(c for c in cuts if c.person == "biden" and c.source.startswith("enrol/biden/biden_a"))
    return a, b


@pytest.fixture(scope="module")
def gallery(faces: Path, engine: FaceEngine) -> Gallery:
    return Gallery.from_entries(
        [
            GalleryEntry("obama", engine.reference_template(
                decode_image(p.read_bytes(), max_pixels=MAX_PIXELS)))
            for p in sorted((faces / "enrol" / "obama").iterdir())
        ]
    )


@pytest.fixture(scope="module")
def make_clip(
    people: tuple[synth.FaceCut, synth.FaceCut], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], tuple[Path, Truth]]:
    folder = tmp_path_factory.mktemp("clips")

    def make(name: str, fourcc: str) -> tuple[Path, Truth]:
        path = folder / name
        try:
            truth = synth.write_clip(
                path, *people, b_frames=B_FRAMES, fps=FPS, frames=FRAMES, fourcc=fourcc
            )
        except RuntimeError as exc:
            pytest.skip(str(exc))
        return path, truth

    return make


def rows_at(screening: VideoScreening, box: Box | None, frame: int) -> list[ScreenedFace]:
    if box is None:
        return []
    return [f for f in screening.faces if f.frame == frame and box_iou(f.box, box) > 0.3]


def test_a_face_shown_only_between_samples_is_found_and_not_taken_for_the_pupil(
    engine: FaceEngine, gallery: Gallery, make_clip: Callable[[str, str], tuple[Path, Truth]]
) -> None:
    path, truth = make_clip("two_people.mp4", "mp4v")
    screening = engine.screen_video(path, gallery)

    assert screening.frames_decoded == FRAMES == sum(1 for _ in iter_video_frames(path))
    assert screening.frames_claimed == FRAMES and not screening.truncated
    assert screening.fps == pytest.approx(FPS)
    b_box = next(b for _, b in truth.values() if b is not None)
    # B: found in every frame B is in, at the right frame numbers, and nowhere else.
    b_rows = [f for f in screening.faces if box_iou(f.box, b_box) > 0.3]
    assert sorted(f.frame for f in b_rows) == B_FRAMES
    assert all((f.status, f.pupil_id) == ("unknown", None) for f in b_rows)
    assert all(f.track is not None for f in b_rows)
    # A: matched in every frame, one track that never takes in B.
    a_rows = [f for i in range(FRAMES) for f in rows_at(screening, truth[i][0], i)]
    assert sorted(f.frame for f in a_rows) == list(range(FRAMES))
    assert all((f.status, f.pupil_id) == ("matched", "obama") for f in a_rows)
    assert {f.track for f in a_rows}.isdisjoint({f.track for f in b_rows})
    # Nothing else was found.
    assert len(screening.faces) == len(a_rows) + len(b_rows)


def test_every_face_in_a_track_carries_the_tracks_decision(
    engine: FaceEngine, make_clip: Callable[[str, str], tuple[Path, Truth]]
) -> None:
    # An empty gallery: every judgeable track is unknown, in every one of its frames.
    path, _ = make_clip("empty_gallery.mp4", "mp4v")
    screening = engine.screen_video(path, Gallery.from_entries([]))
    assert screening.faces
    assert {(f.status, f.pupil_id, f.candidates) for f in screening.faces} == {
        ("unknown", None, ())}
    # A's track runs unbroken; B's two appearances are two tracks.
    assert screening.tracks == 3


def test_a_truncated_clip_is_screened_as_far_as_it_decodes_and_flagged(
    engine: FaceEngine,
    gallery: Gallery,
    make_clip: Callable[[str, str], tuple[Path, Truth]],
    tmp_path: Path,
) -> None:
    # Matroska keeps its header at the front, so half a file still decodes.
    whole, _ = make_clip("whole.mkv", "MJPG")
    half = tmp_path / "half.mkv"
    data = whole.read_bytes()
    half.write_bytes(data[: len(data) // 2])

    screening = engine.screen_video(half, gallery)

    decoded = screening.frames_decoded
    assert 0 < decoded < FRAMES - 2
    assert decoded == sum(1 for _ in iter_video_frames(half))
    assert screening.frames_claimed == FRAMES
    assert screening.truncated
    # Every decoded frame was screened: A is found in each.
    assert {f.frame for f in screening.faces} == set(range(decoded))
    b_seen = {f.frame for f in screening.faces if f.status != "matched"}
    assert b_seen == {i for i in B_FRAMES if i < decoded}


def test_an_mp4_cut_before_its_index_is_undecodable_not_empty(
    engine: FaceEngine,
    gallery: Gallery,
    make_clip: Callable[[str, str], tuple[Path, Truth]],
    tmp_path: Path,
) -> None:
    # OpenCV's MP4 writer puts the index (moov) last: without it no frame can be found.
    # That must fail loudly, never pass as a video without faces.
    whole, _ = make_clip("whole.mp4", "mp4v")
    half = tmp_path / "half.mp4"
    data = whole.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(UndecodableMedia):
        engine.screen_video(half, gallery)


def test_a_container_claiming_the_wrong_frame_rate_is_still_screened_frame_by_frame(
    engine: FaceEngine,
    gallery: Gallery,
    make_clip: Callable[[str, str], tuple[Path, Truth]],
    tmp_path: Path,
) -> None:
    path, _ = make_clip("rate.mp4", "mp4v")
    # Multiply the track's timescale by 4: the container now claims 120 fps.
    data = bytearray(path.read_bytes())
    box = data.index(b"mdhd")
    field = box + 4 + 4 + (16 if data[box + 4] == 1 else 8)
    (timescale,) = struct.unpack(">I", data[field : field + 4])
    data[field : field + 4] = struct.pack(">I", timescale * 4)
    wrong = tmp_path / "wrong_rate.mp4"
    wrong.write_bytes(bytes(data))
    assert probe_video(wrong).fps == pytest.approx(4 * FPS)

    screening = engine.screen_video(wrong, gallery)

    assert screening.fps == pytest.approx(4 * FPS)
    assert screening.frames_decoded == FRAMES and not screening.truncated
    b_frames = sorted(f.frame for f in screening.faces if f.status == "unknown")
    assert b_frames == B_FRAMES
    assert {f.frame for f in screening.faces if f.pupil_id == "obama"} == set(range(FRAMES))
