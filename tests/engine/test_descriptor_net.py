"""dlib's descriptor network on onnxruntime (workers/engine/resnet.py) against dlib itself.

Screening relies on the onnxruntime copy being the same function as dlib's network; the
thresholds in docs/calibration.md were measured with dlib's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
import pytest

from workers.engine import encode
from workers.engine.encode import Encoder, dlib_like_box
from workers.engine.engine import EngineConfig, FaceEngine, get_engine
from workers.engine.imaging import decode_image
from workers.engine.resnet import CHIP_PADDING, CHIP_SIDE, DescriptorNet, ModelFormatError
from workers.engine.types import RGBImage

MAX_PIXELS = 100_000_000
# Float32 summation order differs between dlib and onnxruntime; the largest difference
# measured over every face in ../shared/faces was 3.7e-7 (distances are judged at 0.01).
ATOL = 2e-6


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return get_engine(EngineConfig())


@pytest.fixture(scope="module")
def load(faces: Path) -> Callable[[str], RGBImage]:
    def _load(relative: str) -> RGBImage:
        return decode_image((faces / relative).read_bytes(), max_pixels=MAX_PIXELS)

    return _load


@pytest.mark.faces
def test_every_shared_face_gets_dlibs_descriptor(
    faces: Path, engine: FaceEngine, load: Callable[[str], RGBImage]
) -> None:
    predictor, net = encode._load_dlib_models()
    fast = Encoder(threads=1)
    assert fast.fast
    photos = [p.relative_to(faces) for p in sorted(faces.glob("*/**/*.jpg"))]
    compared = 0
    for photo in photos:
        found = engine.find_faces(load(str(photo)))
        upright = [f for f in found.faces if f.rotation == 0]
        if not upright:
            continue
        rgb = found.images[0]
        shapes = dlib.full_object_detections()
        for face in upright:
            left, top, right, bottom = dlib_like_box(face.detection)
            shapes.append(predictor(rgb, dlib.rectangle(left, top, right, bottom)))
        reference = np.array([np.asarray(d) for d in net.compute_face_descriptor(rgb, shapes, 1)])
        ours = fast.encode(rgb, [f.detection for f in upright])
        np.testing.assert_allclose(ours, reference, rtol=0, atol=ATOL, err_msg=str(photo))
        exact = fast.encode(rgb, [f.detection for f in upright], exact=True)
        np.testing.assert_array_equal(exact, reference)
        compared += len(upright)
    assert compared >= 25


def test_a_network_that_disagrees_with_dlib_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Any wiring or weight error shows as a disagreement on the check chips; the encoder
    # must then fall back to dlib, never use the faulty network.
    real = DescriptorNet.descriptors

    def off_by_a_little(self: DescriptorNet, chips: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        return real(self, chips) + 1e-3

    monkeypatch.setattr(DescriptorNet, "descriptors", off_by_a_little)
    encoder = Encoder(threads=1)
    assert not encoder.fast
    chip_image = encode._check_chips()[0]
    rgb = np.ascontiguousarray(np.pad(chip_image, ((100, 100), (100, 100), (0, 0))))
    from workers.engine.detect import Detection

    det = Detection(100.0, 100.0, 250.0, 300.0, 0.9,
                    np.array([[140, 160], [210, 160], [175, 200], [150, 240], [200, 240]], float))
    exact = encoder.encode(rgb, [det], exact=True)
    np.testing.assert_array_equal(encoder.encode(rgb, [det]), exact)


def test_a_model_file_of_another_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "net.dat"
    real = Path(encode._model_paths()[1]).read_bytes()
    path.write_bytes(real[: len(real) // 2])
    with pytest.raises(ModelFormatError):
        DescriptorNet.load(path, threads=1)
    path.write_bytes(real.replace(b"\x01\x05relu_", b"\x01\x05relv_", 1))
    with pytest.raises(ModelFormatError):
        DescriptorNet.load(path, threads=1)


def test_chips_must_be_dlib_sized() -> None:
    net = DescriptorNet.load(Path(encode._model_paths()[1]), threads=1)
    with pytest.raises(ValueError, match="chips"):
        net.descriptors(np.zeros((1, 100, 100, 3), np.uint8))
    assert net.descriptors(np.zeros((0, CHIP_SIDE, CHIP_SIDE, 3), np.uint8)).shape == (0, 128)
    assert CHIP_PADDING == 0.25  # compute_face_descriptor's default, as face_recognition uses
