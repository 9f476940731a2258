"""dlib's face descriptor network (face_recognition's model) run on onnxruntime.

Why: the dlib-bin wheel has no BLAS, so dlib runs this ResNet at about 80-100 ms per
face on one core: over a third of the screening time of an event photo and most of
it for a class photo. The same weights, read from the ``.dat`` file of
``face_recognition_models``, run here as an ONNX graph in about a tenth of that
(docs/calibration.md, "Speed").

Nothing is trained or approximated: the graph is dlib's ``anet_type`` layer for layer
(``dlib/tools/python/src/face_recognition.cpp``), on the same 150x150 chips that
``dlib.get_face_chips`` cuts (dlib's own alignment code), with dlib's input
normalisation. Results equal dlib's up to float32 summation order (largest difference
4e-7 per component over the shared faces; distances are decided at 0.01).
``DescriptorNet.load`` checks the file's layer sequence against that architecture, and
the caller compares both on sample chips before use (``encode.Encoder``), so any
mismatch falls back to dlib rather than to wrong encodings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from workers.engine.detect import _pb_encode_varint, _pb_len_field

FloatArray = npt.NDArray[np.float32]

CHIP_SIDE = 150  # dlib input_rgb_image_sized<150>
CHIP_PADDING = 0.25  # compute_face_descriptor's default, used by face_recognition

# The architecture of dlib_face_recognition_resnet_model_v1, bottom-up, as the kinds
# this parser gives each serialised layer ("tag" = a tag or skip layer, which carry
# no data). ares: relu(x + block(x)); ares_down: relu(avgpool2(x) + block_stride2(x)).
_ARES = ["tag", "con", "affine", "relu", "con", "affine", "add_prev", "relu"]
_ARES_DOWN = ["tag", "con", "affine", "relu", "con", "affine", "tag", "tag", "avg_pool",
              "add_prev", "relu"]
_EXPECTED_KINDS = (
    ["con", "affine", "relu", "max_pool"]
    + _ARES * 3  # level 4, 32 channels
    + _ARES_DOWN + _ARES * 3  # level 3, 64
    + _ARES_DOWN + _ARES * 2  # level 2, 128
    + _ARES_DOWN + _ARES * 2  # level 1, 256
    + _ARES_DOWN  # level 0, 256
    + ["avg_pool_all", "fc"]
)


class ModelFormatError(ValueError):
    """The .dat file is not the network this module implements."""


@dataclass
class _Layer:
    kind: str
    weights: list[FloatArray] = field(default_factory=list)
    # con: (stride, pad); pools: (window, stride)
    ints: tuple[int, ...] = ()


class _DlibReader:
    """dlib's serialisation format (dlib/serialize.h): integers as a byte holding the
    length (low nibble) and sign (0x80) followed by that many little-endian bytes;
    strings as length + bytes; scalar floats as integer mantissa and exponent; bools
    as ASCII '0'/'1'; tensors (version 2) as four dimensions then raw float32."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read_int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8:
            raise ModelFormatError(f"bad integer at byte {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def read_str(self) -> str:
        n = self.read_int()
        text = self.data[self.pos : self.pos + n].decode("ascii")
        self.pos += n
        return text

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return float(mantissa * 2.0**exponent)

    def skip_bools(self) -> None:
        while self.data[self.pos : self.pos + 1] in (b"0", b"1"):
            self.pos += 1

    def read_tensor(self) -> FloatArray:
        if self.read_int() != 2:
            raise ModelFormatError(f"unknown tensor version at byte {self.pos}")
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        out = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return out.reshape(shape).astype(np.float32)

    def read_alias(self) -> tuple[int, ...]:
        if self.read_int() != 1:
            raise ModelFormatError(f"unknown alias_tensor version at byte {self.pos}")
        return tuple(self.read_int() for _ in range(4))

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            raise ModelFormatError(f"unexpected {what} at byte {self.pos}")


def _read_layers(data: bytes) -> tuple[tuple[float, float, float], list[_Layer]]:
    r = _DlibReader(data)
    r.expect(r.read_int() == 1 and r.read_str() == "loss_metric_2", "loss layer")
    r.read_float()
    r.read_float()  # margin and distance threshold: training only
    # Every wrapping layer writes its version, then its subnetwork, then its own data,
    # so all versions come first (top-down) and the layers' data follows bottom-up.
    versions: list[int] = []
    while data[r.pos] == 1 and data[r.pos + 1] in (1, 2, 3):
        versions.append(r.read_int())
    r.expect(r.read_str() == "input_rgb_image_sized", "input layer")
    means = (r.read_float(), r.read_float(), r.read_float())
    r.expect(r.read_int() == CHIP_SIDE and r.read_int() == CHIP_SIDE, "input size")
    layers: list[_Layer] = []
    for version in reversed(versions):
        if version == 1:  # add_tag_layer / add_skip_layer: no data of their own
            layers.append(_Layer("tag"))
            continue
        layers.append(_read_details(r))
        r.skip_bools()
        r.read_tensor()  # x_grad
        r.read_tensor()  # cached output
        r.read_tensor()  # params_grad (version 2) / grad_final (version 3, the input's layer)
        if version == 3:
            r.read_int()  # sample_expansion_factor
    r.expect(r.pos == len(data), "trailing data")
    return means, layers


def _read_details(r: _DlibReader) -> _Layer:
    kind = r.read_str()
    if kind == "con_4":
        params = r.read_tensor().ravel()
        filters = r.read_int()
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        shape = r.read_alias()
        r.read_alias()  # biases
        for _ in range(4):
            r.read_float()  # learning-rate multipliers
        r.expect(nr == nc and sy == sx and py == px and shape[0] == filters, "con shape")
        n = int(np.prod(shape))
        weights = params[:n].reshape(shape)
        bias = params[n : n + filters].reshape(1, filters, 1, 1)
        return _Layer("con", [weights, bias], (sy, py))
    if kind == "affine_":
        params = r.read_tensor().ravel()
        gamma = r.read_alias()
        r.read_alias()
        r.expect(r.read_int() == 0, "affine mode")  # CONV_MODE: one gamma/beta per channel
        k = gamma[1]
        return _Layer("affine", [params[:k].reshape(1, k, 1, 1),
                                 params[k : 2 * k].reshape(1, k, 1, 1)])
    if kind == "relu_":
        return _Layer("relu")
    if kind == "add_prev_":
        return _Layer("add_prev")
    if kind in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        r.expect(nr == nc and sy == sx and py == px == 0, "pool shape")
        if kind == "avg_pool_2" and nr == 0:
            return _Layer("avg_pool_all")
        return _Layer(kind[:8], [], (nr, sy))
    if kind == "fc_2":
        outputs = r.read_int()
        inputs = r.read_int()
        params = r.read_tensor().ravel()
        r.read_alias()
        r.read_alias()
        r.expect(r.read_int() == 1, "fc bias mode")  # FC_NO_BIAS
        for _ in range(4):
            r.read_float()
        return _Layer("fc", [params[: inputs * outputs].reshape(inputs, outputs)])
    raise ModelFormatError(f"unexpected layer {kind!r}")


# ------------------------------------------------------------------ ONNX, by hand
# Field numbers from onnx.proto (IR version 8, opset 13); no `onnx` package needed.


def _pb_varint_field(number: int, value: int) -> bytes:
    return _pb_encode_varint(number << 3) + _pb_encode_varint(value)


def _pb_str(number: int, text: str) -> bytes:
    return _pb_len_field(number, text.encode())


def _attr_ints(name: str, values: list[int]) -> bytes:
    body = _pb_str(1, name) + _pb_varint_field(20, 7)  # AttributeType INTS
    body += b"".join(_pb_varint_field(8, v) for v in values)
    return _pb_len_field(5, body)


def _node(op: str, inputs: list[str], output: str, attrs: bytes = b"") -> bytes:
    body = b"".join(_pb_str(1, i) for i in inputs) + _pb_str(2, output)
    body += _pb_str(3, output) + _pb_str(4, op) + attrs
    return _pb_len_field(1, body)


def _initializer(name: str, array: npt.NDArray[np.float32] | npt.NDArray[np.int64]) -> bytes:
    dtype = 1 if array.dtype == np.float32 else 7  # FLOAT, INT64
    body = b"".join(_pb_varint_field(1, d) for d in array.shape)
    body += _pb_varint_field(2, dtype) + _pb_str(8, name)
    body += _pb_len_field(9, np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
                          .tobytes())
    return _pb_len_field(5, body)


def _value_info(number: int, name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(
        _pb_len_field(1, _pb_str(2, d) if isinstance(d, str) else _pb_varint_field(1, d))
        for d in dims
    )
    tensor_type = _pb_varint_field(1, 1) + _pb_len_field(2, shape)
    return _pb_len_field(number, _pb_str(1, name) + _pb_len_field(2, _pb_len_field(1, tensor_type)))


def _build_onnx(layers: list[_Layer]) -> bytes:
    """The network as an ONNX ModelProto: input "chips" (N, 3, 150, 150) normalised as
    dlib does; output "descriptors" (N, 128)."""
    nodes: list[bytes] = []
    inits: list[bytes] = []
    shapes: dict[str, tuple[int, ...]] = {"chips": (3, CHIP_SIDE, CHIP_SIDE)}
    count = 0

    def name() -> str:
        nonlocal count
        count += 1
        return f"t{count}"

    def weight(array: npt.NDArray[np.float32] | npt.NDArray[np.int64]) -> str:
        w = name()
        inits.append(_initializer(w, array))
        return w

    def add(a: str, b: str) -> str:
        # dlib's add_prev: the sum over the larger of the two shapes, each input
        # zero-padded at the end of every dimension (tt::add).
        big = tuple(max(x, y) for x, y in zip(shapes[a], shapes[b], strict=True))
        padded = []
        for t in (a, b):
            if shapes[t] != big:
                ends = [0, *(m - s for m, s in zip(big, shapes[t], strict=True))]
                pads = weight(np.array([0, 0, 0, 0, *ends], dtype=np.int64))
                out = name()
                nodes.append(_node("Pad", [t, pads], out))
                shapes[out] = big
                t = out
            padded.append(t)
        out = name()
        nodes.append(_node("Add", padded, out))
        shapes[out] = big
        return out

    x = "chips"
    block_in = tag2 = ""
    pending_tags = 0
    for layer in layers:
        if layer.kind == "tag":
            pending_tags += 1
            continue
        if pending_tags == 1:  # tag1: the block's input
            block_in = x
        elif pending_tags == 2:  # tag2 (the block's output), then skip back to tag1
            tag2, x = x, block_in
        pending_tags = 0
        c, h, w = shapes[x]
        out = name()
        if layer.kind == "con":
            filters, bias = layer.weights
            stride, pad = layer.ints
            k = filters.shape[2]
            nodes.append(_node("Conv", [x, weight(filters), weight(bias.ravel())], out,
                               _attr_ints("kernel_shape", [k, k])
                               + _attr_ints("strides", [stride, stride])
                               + _attr_ints("pads", [pad] * 4)))
            side = [1 + (s + 2 * pad - k) // stride for s in (h, w)]
            shapes[out] = (filters.shape[0], side[0], side[1])
        elif layer.kind == "affine":
            gamma, beta = layer.weights
            scaled = name()
            nodes.append(_node("Mul", [x, weight(gamma)], scaled))
            nodes.append(_node("Add", [scaled, weight(beta)], out))
            shapes[out] = shapes[x]
        elif layer.kind == "relu":
            nodes.append(_node("Relu", [x], out))
            shapes[out] = shapes[x]
        elif layer.kind in ("max_pool", "avg_pool"):
            window, stride = layer.ints
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            nodes.append(_node(op, [x], out, _attr_ints("kernel_shape", [window, window])
                               + _attr_ints("strides", [stride, stride])))
            shapes[out] = (c, 1 + (h - window) // stride, 1 + (w - window) // stride)
        elif layer.kind == "add_prev":
            out = add(x, tag2 if tag2 else block_in)
            tag2 = ""
        elif layer.kind == "avg_pool_all":
            pooled = name()
            nodes.append(_node("GlobalAveragePool", [x], pooled))
            nodes.append(_node("Flatten", [pooled], out))
            shapes[out] = (c, 1, 1)
        elif layer.kind == "fc":
            nodes.append(_node("MatMul", [x, weight(layer.weights[0])], "descriptors"))
            out = "descriptors"
            shapes[out] = (layer.weights[0].shape[1], 1, 1)
        x = out
    if x != "descriptors":
        raise ModelFormatError("network does not end in its descriptor layer")
    graph = b"".join(nodes) + _pb_str(2, "dlib_face_recognition_resnet_model_v1")
    graph += b"".join(inits)
    graph += _value_info(11, "chips", ["N", 3, CHIP_SIDE, CHIP_SIDE])
    graph += _value_info(12, "descriptors", ["N", 128])
    opset = _pb_str(1, "") + _pb_varint_field(2, 13)
    return (_pb_varint_field(1, 8) + _pb_str(2, "consentgate") + _pb_len_field(7, graph)
            + _pb_len_field(8, opset))


class DescriptorNet:
    """The descriptor network in an onnxruntime session; thread-safe, like the session."""

    def __init__(self, means: tuple[float, float, float], session: ort.InferenceSession) -> None:
        self._means = np.array(means, dtype=np.float32).reshape(1, 3, 1, 1)
        self._session = session

    @classmethod
    def load(cls, path: Path, *, threads: int) -> DescriptorNet:
        try:
            means, layers = _read_layers(path.read_bytes())
        except (IndexError, ValueError, UnicodeDecodeError) as exc:  # truncated or garbled
            raise ModelFormatError(f"cannot read {path.name}: {exc}") from exc
        kinds = [layer.kind for layer in layers]
        if kinds != _EXPECTED_KINDS:
            raise ModelFormatError("the model file is not dlib_face_recognition_resnet_model_v1")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            _build_onnx(layers), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(means, session)

    def descriptors(self, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """(n, 128) float64 for (n, 150, 150, 3) RGB chips cut by dlib.get_face_chips."""
        if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIDE, CHIP_SIDE, 3):
            raise ValueError(f"expected (n, {CHIP_SIDE}, {CHIP_SIDE}, 3) chips, got {chips.shape}")
        # dlib's input layer: (pixel - mean) / 256 per channel, in float32.
        x = (chips.transpose(0, 3, 1, 2).astype(np.float32) - self._means) / np.float32(256)
        (out,) = self._session.run(["descriptors"], {"chips": x})
        return np.asarray(out, dtype=np.float64)
