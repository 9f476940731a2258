"""Large photos are searched whole: small faces next to a large one in a 12 MP photo.

The first pass shrinks a 4000x3000 photo to 1600 px, where a face 30 px tall is 12 px
and not found; the full-resolution pass in tiles must find it even though the first
pass found the large face. Composites from bench/synth.py (public adult faces only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import synth
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.match import Gallery
from workers.engine.types import box_iou

pytestmark = pytest.mark.faces

HEIGHTS = [20, 22, 24, 26, 28, 30, 32] * 2  # px, face box height as pasted


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine(EngineConfig())


@pytest.fixture(scope="module")
def cuts(faces: Path, engine: FaceEngine) -> list[synth.FaceCut]:
    return synth.cut_faces(faces, engine)


@pytest.mark.parametrize("busy", [False, True], ids=["plain", "busy"])
def test_every_small_stranger_beside_a_large_face_is_found_at_12_mp(
    engine: FaceEngine, cuts: list[synth.FaceCut], busy: bool
) -> None:
    image, large, strangers = synth.large_photo(
        cuts, np.random.default_rng(11), small_heights=HEIGHTS, busy=busy
    )
    assert image.shape == (3000, 4000, 3)

    found = engine.find_faces(image)
    screened = engine.screen_image(image, Gallery.from_entries([]))

    assert found.full_resolution
    assert any(box_iou(f.box, large) > 0.5 for f in found.faces)
    missed = [
        (h, box) for h, box in zip(HEIGHTS, strangers, strict=True)
        if not any(box_iou(f.box, box) > 0.3 for f in found.faces)
    ]
    assert not missed
    # Below the quality floor (40 px): found, never judged.
    for box in strangers:
        (row,) = [f for f in screened if box_iou(f.box, box) > 0.3]
        assert (row.status, row.pupil_id) == ("uncertain", None)
    # Nothing away from the pasted faces: no fragments cut by tile edges, no background.
    # (A second, looser box around a small face can occur; it is `uncertain` too.)
    pasted = [large, *strangers]
    stray = [f.box for f in found.faces if all(box_iou(f.box, b) == 0 for b in pasted)]
    assert not stray


def test_a_photo_within_the_first_pass_size_gets_no_extra_pass(engine: FaceEngine) -> None:
    assert not engine.find_faces(np.full((1200, 1600, 3), 128, np.uint8)).full_resolution
