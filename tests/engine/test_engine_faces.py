"""The face engine on the public test faces in ../shared/faces (see its README).

The gallery is built once per module from enrol/ through the enrolment gate, exactly
as the register service does, and every screening goes through FaceEngine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from workers.engine.encode import dlib_like_box
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.imaging import decode_image, iter_video_frames
from workers.engine.match import Gallery
from workers.engine.types import EnrolmentRejected, GalleryEntry, RGBImage, ScreenedFace

pytestmark = pytest.mark.faces

MAX_PIXELS = 100_000_000
ENROLLED = (
    "alex_lacamoire",
    "biden",
    "kit_harington",
    "lin_manuel_miranda",
    "obama",
    "rose_leslie",
)


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine(EngineConfig())


@pytest.fixture(scope="module")
def load(faces: Path) -> Callable[[str], RGBImage]:
    def _load(relative: str) -> RGBImage:
        return decode_image((faces / relative).read_bytes(), max_pixels=MAX_PIXELS)

    return _load


@pytest.fixture(scope="module")
def gallery(faces: Path, engine: FaceEngine, load: Callable[[str], RGBImage]) -> Gallery:
    entries = [
        GalleryEntry(folder.name, engine.reference_template(load(f"enrol/{folder.name}/{p.name}")))
        for folder in sorted((faces / "enrol").iterdir())
        for p in sorted(folder.iterdir())
    ]
    gallery = Gallery.from_entries(entries)
    assert gallery.pupil_ids == ENROLLED
    return gallery


def matched(found: list[ScreenedFace]) -> list[str]:
    return sorted(f.pupil_id for f in found if f.status == "matched" and f.pupil_id)


def contains(box: tuple[int, int, int, int], x: int, y: int) -> bool:
    top, right, bottom, left = box
    return left <= x <= right and top <= y <= bottom


# --------------------------------------------------------------------------- stills


@pytest.mark.parametrize(
    ("photo", "pupil"),
    [
        ("johnsnow_test1.jpg", "kit_harington"),
        ("alex_lacamoire1.jpg", "alex_lacamoire"),
        ("obama1.jpg", "obama"),
    ],
)
def test_single_pupil_photo_has_exactly_that_face(
    engine: FaceEngine, gallery: Gallery, load: Callable[[str], RGBImage], photo: str, pupil: str
) -> None:
    # Any extra unknown/uncertain face would keep these photos from ever being published.
    found = engine.screen_image(load(f"events/{photo}"), gallery)
    assert [(f.status, f.pupil_id) for f in found] == [("matched", pupil)]
    assert found[0].distance is not None and found[0].distance <= engine.config.threshold
    assert found[0].frame == 0


@pytest.mark.parametrize(
    ("photo", "pupils"),
    [
        ("two_people.jpg", ["biden", "obama"]),
        ("kit_with_rose.jpg", ["kit_harington", "rose_leslie"]),
    ],
)
def test_group_photo_matches_everyone_enrolled(
    engine: FaceEngine,
    gallery: Gallery,
    load: Callable[[str], RGBImage],
    photo: str,
    pupils: list[str],
) -> None:
    found = engine.screen_image(load(f"events/{photo}"), gallery)
    assert matched(found) == pupils
    # Anything else found (kit_with_rose has a half-hidden person far behind) is never named.
    assert all(f.pupil_id is None for f in found if f.status != "matched")


def test_unknown_child_is_found_and_not_matched(
    engine: FaceEngine, gallery: Gallery, load: Callable[[str], RGBImage]
) -> None:
    found = engine.screen_image(load("events/obama_and_biden.jpg"), gallery)
    assert matched(found) == ["biden", "obama"]
    # The child, lower right, looking down: centre about (1710, 1127) in 2000x1428.
    child = [f for f in found if contains(f.box, 1710, 1127)]
    assert len(child) == 1
    assert child[0].status in ("unknown", "uncertain")
    assert child[0].pupil_id is None


def test_video_matches_the_performer_and_flags_everyone_else(
    faces: Path, engine: FaceEngine, gallery: Gallery
) -> None:
    clip = faces / "video" / "short_hamilton_clip.mp4"
    screening = engine.screen_video(clip, gallery)
    found = screening.faces
    # Every frame the decoder yields is screened, and the count is the copier's too.
    assert screening.frames_decoded == 275 == sum(1 for _ in iter_video_frames(clip))
    assert not screening.truncated
    # The performer is one long track. Some of its encoded looks match him and some,
    # turned away, are unknown, so the track is matched only if all agree; either way
    # he is named, as the pupil or as the nearest candidate, so his consent decides.
    lin = "lin_manuel_miranda"
    performer = [
        f for f in found if f.pupil_id == lin or (f.candidates and f.candidates[0][0] == lin)
    ]
    assert len({f.frame for f in performer}) >= 100
    # No one in the clip but the performer is enrolled and recognisable.
    assert set(matched(found)) <= {lin}
    assert {pid for f in found for pid, _ in f.candidates} == {lin}
    unresolved = [f for f in found if f.status != "matched"]
    # The small pianist at the start, and the audience near frame 225.
    assert any(f.frame <= 30 for f in unresolved)
    assert any(200 <= f.frame <= 250 for f in unresolved)
    assert all(f.pupil_id is None for f in unresolved)
    # Faces between the old 2 fps samples (every 14th frame) are seen too.
    assert {f.frame for f in found} - set(range(0, 275, 14))
    assert {f.frame for f in found} <= set(range(275))
    # Every face belongs to a track, and every face of a track shares its decision.
    by_track: dict[int | None, set[tuple[str, str | None]]] = {}
    for f in found:
        by_track.setdefault(f.track, set()).add((f.status, f.pupil_id))
    assert None not in by_track
    assert all(len(decisions) == 1 for decisions in by_track.values())


def test_empty_gallery_makes_every_face_unknown(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    found = engine.screen_image(load("events/two_people.jpg"), Gallery.from_entries([]))
    assert [(f.status, f.pupil_id, f.distance) for f in found] == [("unknown", None, None)] * 2


def test_faces_below_the_quality_floor_are_uncertain_never_matched(
    engine: FaceEngine, gallery: Gallery, load: Callable[[str], RGBImage]
) -> None:
    # Small: obama-240p shrunk so the face is about 30 px tall (floor: 40).
    small = load("events/obama-240p.jpg")
    small = np.asarray(cv2.resize(small, (171, 96), interpolation=cv2.INTER_AREA), np.uint8)
    # Blurred: two_people with a blur of 3% of the face height (sharpness ~4, floor 10).
    blurred = np.asarray(cv2.GaussianBlur(load("events/two_people.jpg"), (0, 0), 6.5), np.uint8)
    for rgb in (small, blurred):
        found = engine.screen_image(rgb, gallery)
        assert found, "the face must still be detected"
        assert all((f.status, f.pupil_id, f.distance) == ("uncertain", None, None) for f in found)


def test_screened_faces_carry_no_encoding(
    engine: FaceEngine, gallery: Gallery, load: Callable[[str], RGBImage]
) -> None:
    found = engine.screen_image(load("events/obama_small.jpg"), gallery)
    assert {f.name for f in dataclasses.fields(found[0])} == {
        "box",
        "frame",
        "status",
        "pupil_id",
        "distance",
        "candidates",
        "track",
    }
    for face in found:
        assert all(isinstance(p, str) and isinstance(d, float) for p, d in face.candidates)


# --------------------------------------------------------------------------- second pass


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_sideways_photo_is_screened_upright(
    engine: FaceEngine, gallery: Gallery, load: Callable[[str], RGBImage], quarter_turns: int
) -> None:
    # A photo whose EXIF orientation was lost. The face must still be found, encoded in
    # the turned frame where it is upright, matched, and boxed in the given image.
    upright = load("events/johnsnow_test1.jpg")
    h, w = upright.shape[:2]
    turned = np.ascontiguousarray(np.rot90(upright, quarter_turns))
    # Face centre (353, 257) upright, mapped into the turned image the engine was given.
    cx, cy = {1: (257, w - 353), 2: (w - 353, h - 257), 3: (h - 257, 353)}[quarter_turns]
    screened = engine.screen_image(turned, gallery)
    kit = [f for f in screened if f.status == "matched"]
    assert [f.pupil_id for f in kit] == ["kit_harington"]
    assert contains(kit[0].box, cx, cy)
    th, tw = turned.shape[:2]
    top, right, bottom, left = kit[0].box
    assert 0 <= top < bottom <= th and 0 <= left < right <= tw
    # Anything else (turned images give the detector the odd false alarm) is never named.
    assert all(f.pupil_id is None for f in screened if f.status != "matched")


@pytest.mark.parametrize(
    ("canvas_hw", "at_xy"),
    [
        ((360, 640), (300, 95)),  # upsampled in one piece
        ((1000, 1700), (470, 600)),  # upsampled in tiles; the face lies in a tile overlap
    ],
)
def test_faces_missed_by_the_first_pass_are_found_by_the_second(
    engine: FaceEngine,
    gallery: Gallery,
    load: Callable[[str], RGBImage],
    canvas_hw: tuple[int, int],
    at_xy: tuple[int, int],
) -> None:
    # A face about 9 px tall is below what the first pass sees at 1:1; the upsampled
    # second pass finds it. Far below the quality floor, so 'uncertain'.
    small = load("events/obama-240p.jpg")
    tiny = np.asarray(cv2.resize(small, (57, 32), interpolation=cv2.INTER_AREA), np.uint8)
    canvas = np.full((*canvas_hw, 3), 235, np.uint8)
    x, y = at_xy
    canvas[y : y + 32, x : x + 57] = tiny
    found = engine.find_faces(canvas)
    assert found.second_pass
    assert any(contains(f.box, x + 29, y + 7) for f in found.faces)
    screened = engine.screen_image(canvas, gallery)
    assert screened and all((f.status, f.pupil_id) == ("uncertain", None) for f in screened)


def test_blank_image_has_no_faces_after_both_passes(engine: FaceEngine, gallery: Gallery) -> None:
    blank = np.full((720, 1280, 3), 200, np.uint8)
    found = engine.find_faces(blank)
    assert found.faces == [] and found.second_pass
    assert engine.screen_image(blank, gallery) == []


def test_first_pass_success_skips_the_second(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    assert not engine.find_faces(load("events/two_people.jpg")).second_pass


# --------------------------------------------------------------------------- enrolment


def test_good_reference_gives_the_face_recognition_encoding(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    from PIL import ImageFile

    # face_recognition sets Pillow's process-wide LOAD_TRUNCATED_IMAGES on import;
    # put it back so later tests see the application's setting.
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import face_recognition
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated

    rgb = load("enrol/kit_harington/kit_a.jpg")
    template = engine.reference_template(rgb)
    assert template.shape == (128,) and template.dtype == np.float64
    assert np.all(np.isfinite(template))
    # Same model, landmarks and jitter as face_recognition.face_encodings(model="small").
    (face,) = engine.find_faces(rgb).faces
    left, top, right, bottom = dlib_like_box(face.detection)
    (reference,) = face_recognition.face_encodings(
        np.array(rgb), [(top, right, bottom, left)], num_jitters=1, model="small"
    )
    np.testing.assert_allclose(template, reference, atol=1e-6)


def test_photo_with_two_faces_is_rejected(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    with pytest.raises(EnrolmentRejected) as exc:
        engine.reference_template(load("events/two_people.jpg"))
    assert exc.value.reason == "This photo shows 2 faces; use a photo of the pupil alone"


def test_heavily_blurred_reference_is_rejected(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    rgb = load("enrol/obama/obama_a.jpg")  # face about 310 px tall
    blurred = np.asarray(cv2.GaussianBlur(rgb, (0, 0), 9), np.uint8)
    with pytest.raises(EnrolmentRejected, match="too blurred"):
        engine.reference_template(blurred)


def test_tiny_reference_face_is_rejected_with_its_size(
    engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    rgb = load("enrol/obama/obama_a.jpg")
    h, w = rgb.shape[:2]
    tiny = np.asarray(cv2.resize(rgb, (w // 5, h // 5), interpolation=cv2.INTER_AREA), np.uint8)
    with pytest.raises(EnrolmentRejected) as exc:
        engine.reference_template(tiny)
    assert exc.value.reason.startswith("The face is too small (")
    size = int(exc.value.reason.split("(")[1].split(" px")[0])
    assert 45 <= size <= 75
    assert exc.value.reason.endswith("px tall); use a closer photo")


def test_reference_without_a_face_is_rejected(engine: FaceEngine) -> None:
    with pytest.raises(EnrolmentRejected) as exc:
        engine.reference_template(np.full((600, 800, 3), 90, np.uint8))
    assert exc.value.reason == "No face found in this photo"


def test_profile_reference_is_rejected(faces: Path, engine: FaceEngine) -> None:
    # Frame 28 of the clip: the performer in full profile, large and sharp enough.
    clip = faces / "video" / "short_hamilton_clip.mp4"
    frame = next(rgb for i, rgb in iter_video_frames(clip) if i == 28)
    performer = np.ascontiguousarray(frame[40:360, 260:560])  # leave out the audience
    with pytest.raises(EnrolmentRejected, match="turned away"):
        engine.reference_template(performer)


# --------------------------------------------------------------------------- plumbing


def test_engine_is_cached_per_config() -> None:
    assert get_engine(EngineConfig()) is get_engine(EngineConfig())
    assert get_engine(EngineConfig(threshold=0.4)) is not get_engine(EngineConfig())


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        EngineConfig(threshold=0)
    with pytest.raises(ValueError, match="enrol_min_face_px"):
        EngineConfig(min_face_px=80, enrol_min_face_px=60)


def test_not_an_rgb_image_is_refused(engine: FaceEngine, gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="RGB"):
        engine.screen_image(np.zeros((10, 10), np.uint8), gallery)


def test_small_face_in_a_large_photo_is_found_when_a_large_face_is_too(
    faces: Path, engine: FaceEngine
) -> None:
    """A 12 MP class photo is shrunk for the first pass; a child 40 px tall at the back
    would be ~17 px at the detector's input. The full-resolution pass must find it even
    though the first pass found the big face in front."""
    src = decode_image((faces / "enrol" / "kit_harington" / "kit_a.jpg").read_bytes(),
                       max_pixels=MAX_PIXELS)
    (top, right, bottom, left) = engine.find_faces(src).faces[0].box
    pad = (bottom - top) // 3
    crop = src[max(top - pad, 0):bottom + pad, max(left - pad, 0):right + pad]
    canvas = np.full((3000, 4000, 3), 200, dtype=np.uint8)

    def paste(height: int, y: int, x: int) -> None:
        scale = height / (bottom - top)
        patch = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas[y:y + patch.shape[0], x:x + patch.shape[1]] = patch

    paste(600, 1200, 400)
    paste(44, 300, 3300)
    found = engine.find_faces(np.ascontiguousarray(canvas)).faces
    assert len(found) == 2, [f.box for f in found]
    small = min(found, key=lambda f: f.height_px)
    assert small.box[3] > 3200 and small.box[0] > 250


def test_a_face_too_close_to_call_names_both_pupils_as_candidates(
    faces: Path, engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    # The same person enrolled as two pupils (twins, or a duplicate record): neither
    # can be chosen, but both must still be named so that both consents can decide.
    templates = [
        engine.reference_template(load(f"enrol/obama/{p.name}"))
        for p in sorted((faces / "enrol" / "obama").iterdir())
    ]
    twins = Gallery.from_entries(
        [GalleryEntry(pid, t) for pid in ("obama_a", "obama_b") for t in templates]
        + [GalleryEntry("biden", engine.reference_template(load("enrol/biden/biden_a.jpg")))]
    )
    (face,) = engine.screen_image(load("events/obama1.jpg"), twins)
    assert (face.status, face.pupil_id) == ("uncertain", None)
    assert [pid for pid, _ in face.candidates] == ["obama_a", "obama_b"]
    assert face.candidates[0][1] == face.candidates[1][1] == face.distance
    assert face.track is None
