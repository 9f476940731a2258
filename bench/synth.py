"""Synthetic class photos with ground truth, for measuring the face engine.

    .venv/bin/python bench/synth.py [--faces ../shared/faces] [--out bench/out/synth]
                                    [--count 40] [--seed 1]

Faces are cut from the public photos in ../shared/faces (public adults only) and pasted
at known positions and sizes onto plain and busy, procedurally drawn backgrounds. Each
image ``NAME.jpg`` gets ``NAME.json`` next to it with every face's box and identity.

Who is who:

* The gallery is ``GALLERY`` (obama, kit_harington, alex_lacamoire), built from their
  enrol/ photos. Their faces in the composites come from *other* photos of them (events/),
  so a match is not a photo matched with itself.
* biden, rose_leslie and lin_manuel_miranda are strangers: never in the gallery. Their
  faces are cut from their enrol/ photos and from event photos not used above.
* The unknown child in events/obama_and_biden.jpg is never used: no photo of a child is
  ever part of a test or benchmark.

Layouts (``ImageSpec.layout``):

* ``class``: 12 faces from 24 to 160 px face height (``large``: 48 to 160 px), none
  covering another;
* ``front_behind``: two large consented faces, each with a small stranger partly behind
  it, plus other class faces;
* ``border``: four faces cut by the image border (one per edge), plus class faces;
* a ``downscaled`` copy (half size) of every ``large`` class image.

Face height is the height of the engine's own detector box on the source photo, scaled
as pasted; the size bands (``BANDS``) use it. Boxes in the JSON are
``[top, right, bottom, left]`` in image pixels, clipped to the image (the engine's box
order). Deterministic for a given seed, source photos, engine detector and library
versions: image ``i`` draws from its own generator seeded by ``(seed, i)``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.engine.engine import EngineConfig, FaceEngine  # noqa: E402
from workers.engine.imaging import decode_image  # noqa: E402
from workers.engine.types import Box, RGBImage  # noqa: E402

FloatArray = npt.NDArray[np.float32]

MAX_PIXELS = 100_000_000
WIDTH, HEIGHT = 1280, 960
JPEG_QUALITY = 90
# Face-height bands in px, [low, high); the last one includes 160.
BANDS: tuple[tuple[int, int], ...] = ((24, 32), (32, 48), (48, 64), (64, 96), (96, 160))
MIN_FACE, MAX_FACE = 24, 160

GALLERY = ("alex_lacamoire", "kit_harington", "obama")
STRANGERS = ("biden", "lin_manuel_miranda", "rose_leslie")


@dataclass(frozen=True)
class SourceSpec:
    path: str  # relative to the faces folder
    index: int  # among the faces >= 40 px found there, ordered left to right
    person: str


# events/two_people.jpg is the same photograph as obama3.jpg and biden_a.jpg, and the
# obama-*p.jpg / obama_small.jpg series is obama_a.jpg (dlib distances 0.05-0.09), so
# none of them is used.
SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("events/obama1.jpg", 0, "obama"),
    SourceSpec("events/obama3.jpg", 0, "obama"),
    SourceSpec("events/obama_and_biden.jpg", 1, "obama"),
    SourceSpec("events/johnsnow_test1.jpg", 0, "kit_harington"),
    SourceSpec("events/kit_with_rose.jpg", 1, "kit_harington"),
    SourceSpec("events/alex_lacamoire1.jpg", 0, "alex_lacamoire"),
    SourceSpec("enrol/biden/biden_a.jpg", 0, "biden"),
    SourceSpec("enrol/biden/biden_b.jpg", 0, "biden"),
    SourceSpec("events/obama_and_biden.jpg", 0, "biden"),
    SourceSpec("enrol/rose_leslie/rose_a.jpg", 0, "rose_leslie"),
    SourceSpec("enrol/rose_leslie/rose_b.jpg", 0, "rose_leslie"),
    SourceSpec("events/kit_with_rose.jpg", 0, "rose_leslie"),
    SourceSpec("enrol/lin_manuel_miranda/lin_a.png", 0, "lin_manuel_miranda"),
)

# Cut margins around the detector box, in box widths (sides) and heights (above, below):
# hair, ears and chin, so the paste edge is away from the face.
MARGIN_SIDE, MARGIN_TOP, MARGIN_BOTTOM = 0.45, 0.55, 0.35
# The cut's alpha is 1 inside this fraction of the inscribed ellipse's radius and falls
# smoothly to 0 at its edge.
FEATHER_INNER = 0.72
# A source face is never enlarged more than this (px of paste per px of source).
MAX_UPSCALE = 1.3


def band_of(height: float) -> str | None:
    for low, high in BANDS:
        if low <= height < high or (high == MAX_FACE and height == MAX_FACE):
            return f"{low}-{high}"
    return None


def band_names() -> list[str]:
    return [f"{low}-{high}" for low, high in BANDS]


def gallery_paths(faces: Path) -> dict[str, list[Path]]:
    """The enrol/ photos of every gallery identity."""
    return {
        person: sorted(p for p in (faces / "enrol" / person).iterdir() if p.is_file())
        for person in GALLERY
    }


@dataclass(frozen=True)
class FaceCut:
    """A face cut from a source photo with its margin; alpha is float32 in [0, 1]."""

    person: str
    source: str
    rgb: RGBImage
    alpha: FloatArray
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 of the detector box, cut px

    @property
    def enrolled(self) -> bool:
        return self.person in GALLERY

    @property
    def face_height(self) -> float:
        return self.box[3] - self.box[1]


def _ellipse_alpha(w: int, h: int) -> FloatArray:
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    r = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    t = np.clip((1 - r) / (1 - FEATHER_INNER), 0, 1)
    out: FloatArray = (t * t * (3 - 2 * t)).astype(np.float32)  # smoothstep
    return out


def cut_faces(faces: Path, engine: FaceEngine | None = None) -> list[FaceCut]:
    """One cut per ``SOURCES`` entry, located with the engine's own detector."""
    engine = engine or FaceEngine(EngineConfig())
    cuts: list[FaceCut] = []
    found_in: dict[str, list[tuple[float, float, float, float]]] = {}
    for spec in SOURCES:
        rgb = decode_image((faces / spec.path).read_bytes(), max_pixels=MAX_PIXELS)
        if spec.path not in found_in:
            # The first pass alone: the cuts (and so the whole synthetic set) must not
            # change when the engine's later passes do.
            dets = sorted(
                (d for d in engine.first_pass(rgb) if d.height >= EngineConfig().min_face_px),
                key=lambda d: d.x1,
            )
            found_in[spec.path] = [(d.x1, d.y1, d.x2, d.y2) for d in dets]
        boxes = found_in[spec.path]
        if spec.index >= len(boxes):
            raise RuntimeError(f"{spec.path}: expected a face #{spec.index}, found {len(boxes)}")
        x1, y1, x2, y2 = boxes[spec.index]
        bw, bh = x2 - x1, y2 - y1
        cx1 = math.floor(x1 - MARGIN_SIDE * bw)
        cy1 = math.floor(y1 - MARGIN_TOP * bh)
        cx2 = math.ceil(x2 + MARGIN_SIDE * bw)
        cy2 = math.ceil(y2 + MARGIN_BOTTOM * bh)
        cw, ch = cx2 - cx1, cy2 - cy1
        img_h, img_w = rgb.shape[:2]
        cut = np.zeros((ch, cw, 3), dtype=np.uint8)
        inside = np.zeros((ch, cw), dtype=np.float32)
        sx1, sy1, sx2, sy2 = max(cx1, 0), max(cy1, 0), min(cx2, img_w), min(cy2, img_h)
        cut[sy1 - cy1 : sy2 - cy1, sx1 - cx1 : sx2 - cx1] = rgb[sy1:sy2, sx1:sx2]
        inside[sy1 - cy1 : sy2 - cy1, sx1 - cx1 : sx2 - cx1] = 1
        # Where the margin runs past the source photo there is nothing to paste.
        alpha = _ellipse_alpha(cw, ch) * inside
        cuts.append(
            FaceCut(
                person=spec.person,
                source=f"{spec.path}#{spec.index}",
                rgb=cut,
                alpha=alpha,
                box=(x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1),
            )
        )
    return cuts


# ------------------------------------------------------------------ ground truth


Role = Literal["class", "front", "behind", "border"]


@dataclass(frozen=True)
class TruthFace:
    box: Box  # top, right, bottom, left; clipped to the image
    height_px: float  # full face height, also when cut by the border
    person: str
    enrolled: bool
    role: Role
    visible: float  # fraction of the face box inside the image
    occluded: float  # fraction of the face box (inside the image) covered by other pastes
    source: str
    mirrored: bool

    @property
    def identity(self) -> str | None:
        """The gallery identity this face must be matched to, or None for a stranger."""
        return self.person if self.enrolled else None

    @property
    def band(self) -> str | None:
        return band_of(self.height_px)

    @property
    def clear(self) -> bool:
        """Whole, unoccluded, and at least 64 px tall: a face a person would call clear."""
        return self.visible >= 0.999 and self.occluded <= 0.01 and self.height_px >= 64

    def to_json(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "height_px": round(self.height_px, 1),
            "identity": self.identity,
            "enrolled": self.enrolled,
            "band": self.band,
            "person": self.person,
            "role": self.role,
            "visible": round(self.visible, 3),
            "occluded": round(self.occluded, 3),
            "clear": self.clear,
            "source": self.source,
            "mirrored": self.mirrored,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TruthFace:
        top, right, bottom, left = (int(v) for v in d["box"])
        return cls(
            box=(top, right, bottom, left),
            height_px=float(d["height_px"]),
            person=str(d["person"]),
            enrolled=bool(d["enrolled"]),
            role=d["role"],
            visible=float(d["visible"]),
            occluded=float(d["occluded"]),
            source=str(d["source"]),
            mirrored=bool(d["mirrored"]),
        )


@dataclass(frozen=True)
class Truth:
    image: str
    width: int
    height: int
    layout: str
    background: str
    downscaled_from: str | None
    faces: list[TruthFace] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "layout": self.layout,
            "background": self.background,
            "downscaled_from": self.downscaled_from,
            "faces": [f.to_json() for f in self.faces],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Truth:
        return cls(
            image=str(d["image"]),
            width=int(d["width"]),
            height=int(d["height"]),
            layout=str(d["layout"]),
            background=str(d["background"]),
            downscaled_from=d["downscaled_from"],
            faces=[TruthFace.from_json(f) for f in d["faces"]],
        )


def load_truth(image: Path) -> Truth:
    data = json.loads(image.with_suffix(".json").read_text())
    return Truth.from_json(data)


# ------------------------------------------------------------------ backgrounds


def _smooth_noise(rng: np.random.Generator, cells: int, channels: int) -> FloatArray:
    small = rng.random((cells, max(2, cells * 4 // 3), channels), dtype=np.float32)
    big = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big, dtype=np.float32).reshape(HEIGHT, WIDTH, channels)


def _gradient(rng: np.random.Generator, strength: float) -> FloatArray:
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    ramp = (xs * math.cos(angle) + ys * math.sin(angle)) / max(WIDTH, HEIGHT)
    tint = rng.uniform(-1, 1, 3).astype(np.float32) * strength
    out: FloatArray = ramp[:, :, None] * tint[None, None, :]
    return out


def plain_background(rng: np.random.Generator) -> RGBImage:
    """A studio-style backdrop: one colour with a gentle gradient."""
    base = rng.uniform(60, 220, 3).astype(np.float32)
    img = base[None, None, :] + _gradient(rng, 25)
    return np.asarray(np.clip(img, 0, 255), dtype=np.uint8)


def busy_background(rng: np.random.Generator) -> tuple[str, RGBImage]:
    """A cluttered backdrop: multi-scale colour noise, stripes and checks, or shapes."""
    kind = str(rng.choice(["noise", "texture", "shapes"]))
    if kind == "noise":
        img = sum(
            (_smooth_noise(rng, cells, 3) * amp for cells, amp in ((3, 160), (12, 90), (48, 60))),
            start=np.zeros((HEIGHT, WIDTH, 3), np.float32),
        )
        img = img - img.mean() + rng.uniform(90, 160)
        img += rng.normal(0, 12, img.shape).astype(np.float32)
    elif kind == "texture":
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
        img = np.zeros((HEIGHT, WIDTH, 3), np.float32)
        for _ in range(3):
            angle = rng.uniform(0, math.pi)
            period = rng.uniform(6, 60)
            wave = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
            colour = rng.uniform(-70, 70, 3).astype(np.float32)
            img += wave[:, :, None] * colour[None, None, :]
        cell = int(rng.integers(16, 64))
        checks = ((xs // cell + ys // cell) % 2).astype(np.float32) * 2 - 1
        img += checks[:, :, None] * rng.uniform(-40, 40, 3).astype(np.float32)
        img += 128 + _gradient(rng, 60)
    else:
        img = np.ascontiguousarray(
            rng.uniform(60, 200, 3).astype(np.float32)[None, None, :] + _gradient(rng, 60)
        )
        for _ in range(int(rng.integers(60, 120))):
            fill = tuple(float(c) for c in rng.uniform(0, 255, 3))
            x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
            w, h = int(rng.integers(10, 220)), int(rng.integers(10, 160))
            if rng.random() < 0.6:
                cv2.rectangle(img, (x, y), (x + w, y + h), fill, -1)
            else:
                angle = float(rng.uniform(0, 180))
                cv2.ellipse(img, (x, y), (w // 2, h // 2), angle, 0, 360, fill, -1)
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), 1.2), np.float32)
        img += rng.normal(0, 6, img.shape).astype(np.float32)
    return kind, np.asarray(np.clip(img, 0, 255), dtype=np.uint8)


# ------------------------------------------------------------------ compositing


@dataclass(frozen=True)
class Placed:
    cut: FaceCut
    height: float  # face height in the composite, px
    x: int  # top-left of the scaled cut in the composite (may be off the canvas)
    y: int
    scale: float
    mirrored: bool
    gain: float
    offset: float
    role: Role

    def face_box(self) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 of the face in composite px, unclipped."""
        x1, y1, x2, y2 = self.cut.box
        if self.mirrored:
            cut_w = self.cut.rgb.shape[1]
            x1, x2 = cut_w - x2, cut_w - x1
        s = self.scale
        return (self.x + x1 * s, self.y + y1 * s, self.x + x2 * s, self.y + y2 * s)

    def cut_rect(self) -> tuple[float, float, float, float]:
        ch, cw = self.cut.rgb.shape[:2]
        return (self.x, self.y, self.x + cw * self.scale, self.y + ch * self.scale)


def _scaled_cut(p: Placed) -> tuple[FloatArray, FloatArray]:
    rgb = p.cut.rgb.astype(np.float32)
    alpha = p.cut.alpha
    if p.mirrored:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    ch, cw = alpha.shape
    size = (max(1, round(cw * p.scale)), max(1, round(ch * p.scale)))
    interp = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_CUBIC
    rgb_s = np.asarray(cv2.resize(np.ascontiguousarray(rgb), size, interpolation=interp))
    alpha_s = np.asarray(cv2.resize(np.ascontiguousarray(alpha), size, interpolation=interp))
    rgb_s = rgb_s * p.gain + p.offset
    return rgb_s.astype(np.float32), np.clip(alpha_s, 0, 1).astype(np.float32)


def _window(
    x: int, y: int, w: int, h: int, canvas_w: int, canvas_h: int
) -> tuple[slice, slice, slice, slice] | None:
    """Canvas and source slices of a w x h patch placed at (x, y), or None if off-canvas."""
    cx1, cy1 = max(x, 0), max(y, 0)
    cx2, cy2 = min(x + w, canvas_w), min(y + h, canvas_h)
    if cx1 >= cx2 or cy1 >= cy2:
        return None
    return (
        slice(cy1, cy2),
        slice(cx1, cx2),
        slice(cy1 - y, cy2 - y),
        slice(cx1 - x, cx2 - x),
    )


def composite(background: RGBImage, placed: Sequence[Placed]) -> tuple[RGBImage, list[float]]:
    """The background with every cut pasted in order, and each face's occluded fraction
    (of its in-image box area) by the cuts pasted after it."""
    canvas = background.astype(np.float32)
    h, w = canvas.shape[:2]
    alphas: list[tuple[int, int, FloatArray]] = []
    for p in placed:
        rgb_s, alpha_s = _scaled_cut(p)
        win = _window(p.x, p.y, alpha_s.shape[1], alpha_s.shape[0], w, h)
        alphas.append((p.x, p.y, alpha_s))
        if win is None:
            continue
        cy, cx, sy, sx = win
        a = alpha_s[sy, sx][:, :, None]
        canvas[cy, cx] = canvas[cy, cx] * (1 - a) + rgb_s[sy, sx] * a
    occluded: list[float] = []
    for i, p in enumerate(placed):
        x1, y1, x2, y2 = _clip_box(p.face_box(), w, h)
        if x2 <= x1 or y2 <= y1:
            occluded.append(0.0)
            continue
        clear = np.ones((y2 - y1, x2 - x1), np.float32)
        for ox, oy, alpha in alphas[i + 1 :]:
            win = _window(ox - x1, oy - y1, alpha.shape[1], alpha.shape[0], x2 - x1, y2 - y1)
            if win is not None:
                cy, cx, sy, sx = win
                clear[cy, cx] *= 1 - alpha[sy, sx]
        occluded.append(float(np.mean(clear < 0.5)))
    return np.asarray(np.clip(canvas, 0, 255), dtype=np.uint8), occluded


def _clip_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return (
        min(max(round(x1), 0), w),
        min(max(round(y1), 0), h),
        min(max(round(x2), 0), w),
        min(max(round(y2), 0), h),
    )


def _truth_face(p: Placed, occluded: float, w: int, h: int) -> TruthFace:
    full = p.face_box()
    x1, y1, x2, y2 = _clip_box(full, w, h)
    full_area = (full[2] - full[0]) * (full[3] - full[1])
    in_w = min(full[2], w) - max(full[0], 0)
    in_h = min(full[3], h) - max(full[1], 0)
    visible = max(0.0, in_w) * max(0.0, in_h) / full_area if full_area > 0 else 0.0
    return TruthFace(
        box=(y1, x2, y2, x1),
        height_px=p.height,
        person=p.cut.person,
        enrolled=p.cut.enrolled,
        role=p.role,
        visible=min(1.0, visible),
        occluded=occluded,
        source=p.cut.source,
        mirrored=p.mirrored,
    )


# ------------------------------------------------------------------ layouts


@dataclass(frozen=True)
class ImageSpec:
    name: str
    layout: Literal["class", "front_behind", "border"]
    background: Literal["plain", "busy"]
    large: bool = False  # class faces 48-160 px, and a half-size copy is made


def plan(count: int) -> list[ImageSpec]:
    """``count`` base images in a fixed rotation of layouts and backgrounds; every
    ``large`` one also gets a downscaled copy (not counted in ``count``)."""
    cycle: list[tuple[Any, Any, bool]] = [
        ("class", "plain", False),
        ("class", "busy", False),
        ("class", "plain", True),
        ("front_behind", "busy", False),
        ("class", "busy", False),
        ("border", "plain", False),
        ("class", "plain", False),
        ("class", "busy", True),
        ("front_behind", "plain", False),
        ("border", "busy", False),
    ]
    return [ImageSpec(f"synth_{i:03d}", *cycle[i % len(cycle)]) for i in range(count)]


def _pick_cut(
    rng: np.random.Generator, cuts: Sequence[FaceCut], height: float, enrolled: bool
) -> FaceCut:
    """A cut of the wanted kind that need not be enlarged much to ``height``."""
    pool = [c for c in cuts if c.enrolled == enrolled and height <= c.face_height * MAX_UPSCALE]
    if not pool:
        pool = [c for c in cuts if c.enrolled == enrolled]
    return pool[int(rng.integers(0, len(pool)))]


def _place(
    rng: np.random.Generator, cut: FaceCut, height: float, cx: float, cy: float, role: Role
) -> Placed:
    """``cut`` scaled to face height ``height`` with the face box centred on (cx, cy)."""
    scale = height / cut.face_height
    mirrored = bool(rng.random() < 0.5)
    probe = Placed(cut, height, 0, 0, scale, mirrored, 1.0, 0.0, role)
    bx1, by1, bx2, by2 = probe.face_box()
    return replace(
        probe,
        x=round(cx - (bx1 + bx2) / 2),
        y=round(cy - (by1 + by2) / 2),
        gain=float(rng.uniform(0.88, 1.12)),
        offset=float(rng.uniform(-10, 10)),
    )


def _overlaps(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float], pad: float = 2.0
) -> bool:
    return a[0] < b[2] + pad and b[0] < a[2] + pad and a[1] < b[3] + pad and b[1] < a[3] + pad


def _fits(p: Placed, others: Sequence[Placed], *, inside: bool = True) -> bool:
    """No cut of p covers another face and no other cut covers p's face."""
    if inside:
        x1, y1, x2, y2 = p.cut_rect()
        if x1 < 0 or y1 < 0 or x2 > WIDTH or y2 > HEIGHT:
            return False
    return not any(
        _overlaps(p.cut_rect(), o.face_box()) or _overlaps(o.cut_rect(), p.face_box())
        for o in others
    )


def _class_heights(rng: np.random.Generator, n: int, index: int, low: float) -> list[float]:
    """n face heights spread over the bands, starting at a band that rotates per image."""
    bands = [(lo, hi) for lo, hi in BANDS if hi > low]
    out = []
    for k in range(n):
        lo, hi = bands[(index + k) % len(bands)]
        out.append(float(rng.uniform(max(lo, low), hi)))
    return out


def _add_class_faces(
    rng: np.random.Generator,
    cuts: Sequence[FaceCut],
    placed: list[Placed],
    heights: Sequence[float],
) -> None:
    # Largest first packs better; the enrolled/stranger split alternates.
    for k, height in enumerate(sorted(heights, reverse=True)):
        cut = _pick_cut(rng, cuts, height, enrolled=k % 2 == 0)
        for _ in range(400):
            p = _place(rng, cut, height, rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT), "class")
            if _fits(p, placed):
                placed.append(p)
                break


def _add_front_behind(
    rng: np.random.Generator, cuts: Sequence[FaceCut], placed: list[Placed], pairs: int
) -> list[tuple[Placed, Placed]]:
    """Large consented faces, each with a small stranger behind it: the large head hides
    part of the small one's head (hair, ear, shoulder) but at most 15% of its face box."""
    out: list[tuple[Placed, Placed]] = []
    for k in range(pairs):
        big_h = float(rng.uniform(110, MAX_FACE))
        big_cut = _pick_cut(rng, cuts, big_h, enrolled=True)
        small_h = float(rng.uniform(MIN_FACE, 60))
        small_cut = _pick_cut(rng, cuts, small_h, enrolled=False)
        for _ in range(2000):
            big = _place(
                rng,
                big_cut,
                big_h,
                rng.uniform(WIDTH * (0.15 + 0.5 * k), WIDTH * (0.35 + 0.5 * k)),
                rng.uniform(HEIGHT * 0.35, HEIGHT * 0.65),
                "front",
            )
            if not _fits(big, placed):
                continue
            bx1, by1, bx2, by2 = big.face_box()
            small_w = small_h * (small_cut.box[2] - small_cut.box[0]) / small_cut.face_height
            side = 1 if rng.random() < 0.5 else -1
            gap = rng.uniform(0.0, 0.5) * small_w
            cx = (bx1 + bx2) / 2 + side * ((bx2 - bx1) / 2 + gap + small_w / 2)
            cy = by1 + rng.uniform(-0.25, 0.25) * (by2 - by1)
            small = _place(rng, small_cut, small_h, cx, cy, "behind")
            if _overlaps(small.face_box(), big.face_box(), pad=0) or not _fits(small, placed):
                continue
            face_hidden, head_hidden = _hidden_by(small, big)
            if face_hidden <= 0.15 and head_hidden >= 0.1:
                placed.extend([small, big])
                out.append((small, big))
                break
    return out


def _hidden_by(under: Placed, over: Placed) -> tuple[float, float]:
    """Fractions of ``under``'s face box and of its whole cut (alpha > 0.5) that ``over``
    hides (its alpha > 0.5), when pasted on top."""
    _, alpha_u = _scaled_cut(under)
    _, alpha_o = _scaled_cut(over)
    hidden = np.zeros_like(alpha_u)
    win = _window(
        over.x - under.x,
        over.y - under.y,
        alpha_o.shape[1],
        alpha_o.shape[0],
        alpha_u.shape[1],
        alpha_u.shape[0],
    )
    if win is not None:
        cy, cx, sy, sx = win
        hidden[cy, cx] = alpha_o[sy, sx]
    head = alpha_u > 0.5
    head_hidden = float(np.mean(hidden[head] > 0.5)) if head.any() else 0.0
    x1, y1, x2, y2 = under.face_box()
    fy1, fx1 = max(round(y1 - under.y), 0), max(round(x1 - under.x), 0)
    face = hidden[fy1 : round(y2 - under.y), fx1 : round(x2 - under.x)]
    face_hidden = float(np.mean(face > 0.5)) if face.size else 0.0
    return face_hidden, head_hidden


def _add_border_faces(
    rng: np.random.Generator, cuts: Sequence[FaceCut], placed: list[Placed]
) -> None:
    """One face cut by each image edge, 50-80% of its box inside the image."""
    for k, edge in enumerate(("left", "right", "top", "bottom")):
        height = float(rng.uniform(48, MAX_FACE))
        cut = _pick_cut(rng, cuts, height, enrolled=k % 2 == 0)
        for _ in range(400):
            inside = rng.uniform(0.5, 0.8)
            width = height / cut.face_height * (cut.box[2] - cut.box[0])
            if edge == "left":
                cx, cy = inside * width - width / 2, rng.uniform(0.2, 0.8) * HEIGHT
            elif edge == "right":
                cx, cy = WIDTH - inside * width + width / 2, rng.uniform(0.2, 0.8) * HEIGHT
            elif edge == "top":
                cx, cy = rng.uniform(0.2, 0.8) * WIDTH, inside * height - height / 2
            else:
                cx, cy = rng.uniform(0.2, 0.8) * WIDTH, HEIGHT - inside * height + height / 2
            p = _place(rng, cut, height, cx, cy, "border")
            if _fits(p, placed, inside=False):
                placed.append(p)
                break


def render(
    spec: ImageSpec, cuts: Sequence[FaceCut], rng: np.random.Generator
) -> tuple[RGBImage, Truth]:
    if spec.background == "plain":
        background_kind, background = "plain", plain_background(rng)
    else:
        kind, background = busy_background(rng)
        background_kind = f"busy:{kind}"
    placed: list[Placed] = []
    if spec.layout == "front_behind":
        _add_front_behind(rng, cuts, placed, pairs=2)
        _add_class_faces(rng, cuts, placed, _class_heights(rng, 6, int(rng.integers(5)), 24))
    elif spec.layout == "border":
        _add_border_faces(rng, cuts, placed)
        _add_class_faces(rng, cuts, placed, _class_heights(rng, 8, int(rng.integers(5)), 24))
    else:
        low = 48 if spec.large else MIN_FACE
        _add_class_faces(rng, cuts, placed, _class_heights(rng, 12, int(rng.integers(5)), low))
    # Smaller faces are further back: pasted first.
    order = sorted(placed, key=lambda p: (p.role != "behind", p.height))
    image, occluded = composite(background, order)
    noisy = image.astype(np.float32) + rng.normal(0, 2.0, image.shape).astype(np.float32)
    image = np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)
    faces = [_truth_face(p, occ, WIDTH, HEIGHT) for p, occ in zip(order, occluded, strict=True)]
    faces.sort(key=lambda f: (f.box[3], f.box[0]))
    truth = Truth(f"{spec.name}.jpg", WIDTH, HEIGHT, spec.layout, background_kind, None, faces)
    return image, truth


def downscale(image: RGBImage, truth: Truth, factor: float, name: str) -> tuple[RGBImage, Truth]:
    """The whole picture at ``factor`` of its size, with the ground truth scaled."""
    w, h = round(truth.width * factor), round(truth.height * factor)
    small = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    faces = []
    for f in truth.faces:
        top, right, bottom, left = f.box
        box = (
            round(top * factor),
            round(right * factor),
            round(bottom * factor),
            round(left * factor),
        )
        faces.append(replace(f, box=box, height_px=f.height_px * factor))
    return small, replace(
        truth, image=f"{name}.jpg", width=w, height=h, downscaled_from=truth.image, faces=faces
    )


def _save(out: Path, image: RGBImage, truth: Truth) -> Path:
    path = out / truth.image
    Image.fromarray(image).save(path, quality=JPEG_QUALITY)
    path.with_suffix(".json").write_text(json.dumps(truth.to_json(), indent=1) + "\n")
    return path


def generate(
    out: Path, cuts: Sequence[FaceCut], specs: Sequence[ImageSpec], *, seed: int
) -> list[Path]:
    """Renders ``specs`` into ``out`` (created if needed); returns the image paths in
    order, each downscaled copy right after its original."""
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i, spec in enumerate(specs):
        rng = np.random.default_rng([seed, i])
        image, truth = render(spec, cuts, rng)
        paths.append(_save(out, image, truth))
        if spec.large:
            small, small_truth = downscale(image, truth, 0.5, f"{spec.name}_half")
            paths.append(_save(out, small, small_truth))
    return paths


# ------------------------------------------------------------------ large photos and clips


def paste(canvas: FloatArray, cut: FaceCut, height: float, cx: float, cy: float) -> Box:
    """Paste ``cut`` (not mirrored) into the float canvas in place, face height ``height``
    centred on (cx, cy); returns the pasted face box (top, right, bottom, left), clipped."""
    p = Placed(cut, height, 0, 0, height / cut.face_height, False, 1.0, 0.0, "class")
    bx1, by1, bx2, by2 = p.face_box()
    p = replace(p, x=round(cx - (bx1 + bx2) / 2), y=round(cy - (by1 + by2) / 2))
    h, w = canvas.shape[:2]
    rgb_s, alpha_s = _scaled_cut(p)
    win = _window(p.x, p.y, alpha_s.shape[1], alpha_s.shape[0], w, h)
    if win is not None:
        wy, wx, sy, sx = win
        a = alpha_s[sy, sx][:, :, None]
        canvas[wy, wx] = canvas[wy, wx] * (1 - a) + rgb_s[sy, sx] * a
    x1, y1, x2, y2 = _clip_box(p.face_box(), w, h)
    return (y1, x2, y2, x1)


def large_background(
    rng: np.random.Generator, width: int, height: int, *, busy: bool
) -> FloatArray:
    """A plain or busy backdrop (as for the class photos) stretched to width x height,
    with fresh pixel noise so the detector sees no smooth upscaling artefacts."""
    base = busy_background(rng)[1] if busy else plain_background(rng)
    resized = cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)
    big = np.asarray(resized, dtype=np.float32)
    out: FloatArray = big + rng.normal(0, 3.0, big.shape).astype(np.float32)
    return out


def large_photo(
    cuts: Sequence[FaceCut],
    rng: np.random.Generator,
    *,
    small_heights: Sequence[float],
    width: int = 4000,
    height: int = 3000,
    large_height: float = 600.0,
    busy: bool = True,
) -> tuple[RGBImage, Box, list[Box]]:
    """A 12 MP photo (by default) with one large face and small strangers at the given
    heights scattered where they overlap nothing; returns (image, large face box, small
    face boxes in the order of ``small_heights``)."""
    canvas = large_background(rng, width, height, busy=busy)
    big = next(c for c in cuts if c.enrolled)
    large = paste(canvas, big, large_height, width * 0.3, height * 0.5)
    strangers = [c for c in cuts if not c.enrolled]
    # x1, y1, x2, y2 of the places already used: the large face with room for hair.
    taken: list[tuple[float, float, float, float]] = [
        (large[3] - 250, large[0] - 350, large[1] + 250, large[2] + 250)
    ]
    boxes: list[Box] = []
    for k, face_h in enumerate(small_heights):
        cut = strangers[k % len(strangers)]
        for _ in range(1000):
            cx = float(rng.uniform(60, width - 60))
            cy = float(rng.uniform(60, height - 60))
            r = face_h * 2.5
            rect = (cx - r, cy - r, cx + r, cy + r)
            if not any(_overlaps(rect, t) for t in taken):
                break
        taken.append(rect)
        boxes.append(paste(canvas, cut, face_h, cx, cy))
    image = np.asarray(np.clip(canvas, 0, 255), dtype=np.uint8)
    return image, large, boxes


def write_clip(
    path: Path,
    cut_a: FaceCut,
    cut_b: FaceCut,
    *,
    b_frames: Sequence[int],
    size: tuple[int, int] = (640, 360),
    fps: float = 30.0,
    frames: int = 90,
    fourcc: str = "mp4v",
    height_a: float | None = None,
    height_b: float | None = None,
    seed: int = 0,
) -> dict[int, tuple[Box | None, Box | None]]:
    """A generated clip: person A in every frame, drifting slowly; person B only in
    ``b_frames``. Returns per frame (A's box, B's box or None). Raises RuntimeError if
    OpenCV cannot write ``fourcc``."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} to {path.suffix}")
    rng = np.random.default_rng(seed)
    background = large_background(rng, w, h, busy=False)
    ha = height_a or h * 0.3
    hb = height_b or h * 0.25
    wanted_b = set(b_frames)
    truth: dict[int, tuple[Box | None, Box | None]] = {}
    try:
        for i in range(frames):
            canvas = background.copy()
            # A sways 40 px left and right over the clip; B stands still on the right.
            box_a = paste(canvas, cut_a, ha, w * 0.3 + 40 * math.sin(i / 15), h * 0.45)
            box_b = paste(canvas, cut_b, hb, w * 0.72, h * 0.5) if i in wanted_b else None
            frame = np.asarray(np.clip(canvas, 0, 255), dtype=np.uint8)
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # BGR
            truth[i] = (box_a, box_b)
    finally:
        writer.release()
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "synth")
    parser.add_argument("--count", type=int, default=40, help="base images (plus copies)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.faces.is_dir():
        sys.exit(
            f"{args.faces} not found; run `make test-data` for how to get the public test images"
        )
    paths = generate(args.out, cut_faces(args.faces), plan(args.count), seed=args.seed)
    faces = sum(len(load_truth(p).faces) for p in paths)
    print(f"{len(paths)} images, {faces} faces in {args.out}")


if __name__ == "__main__":
    main()
