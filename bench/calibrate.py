"""Measurements behind docs/calibration.md: detector choice, box geometry, encoder
variant, distance distributions, threshold, margin and quality floor.

    .venv/bin/python bench/calibrate.py [--faces ../shared/faces] [--out bench/out/calibration.md]

Uses the engine's own detector, quality measures and encoder (workers.engine), on the
public test faces in ../shared/faces (see its README for the ground truth). Prints
markdown; nothing here is a test.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers.engine.encode import Encoder, dlib_like_box  # noqa: E402
from workers.engine.engine import EngineConfig, FaceEngine, FoundFace  # noqa: E402
from workers.engine.imaging import decode_image, sample_video_frames  # noqa: E402
from workers.engine.types import RGBImage  # noqa: E402

FloatArray = npt.NDArray[np.float64]
Box4 = tuple[float, float, float, float]  # x1, y1, x2, y2
Boxes = list[Box4]
MAX_PIXELS = 100_000_000

# Face centres (x, y) in each event photo, in the README's left-to-right order, checked
# by eye. A detection finds a face when its box contains the centre.
EVENT_TRUTH: dict[str, list[tuple[str, tuple[int, int]]]] = {
    "two_people.jpg": [("obama", (310, 126)), ("biden", (866, 154))],
    "kit_with_rose.jpg": [("rose_leslie", (118, 162)), ("kit_harington", (306, 142))],
    "johnsnow_test1.jpg": [("kit_harington", (353, 257))],
    "alex_lacamoire1.jpg": [("alex_lacamoire", (793, 338))],
    "obama1.jpg": [("obama", (722, 362))],
    "obama3.jpg": [("obama", (780, 430))],
    "obama_and_biden.jpg": [
        ("biden", (852, 510)),
        ("obama", (1235, 481)),
        ("child", (1710, 1127)),
    ],
    "obama-240p.jpg": [("obama", (221, 58))],
    "obama-480p.jpg": [("obama", (442, 114))],
    "obama-720p.jpg": [("obama", (666, 170))],
    "obama-1080p.jpg": [("obama", (994, 258))],
    "obama_small.jpg": [("obama", (162, 113))],
    "obama_partial_face.jpg": [("obama", (91, 258))],
    "obama_partial_face2.jpg": [("obama", (466, 266))],
}
# Identifiable faces in the clip sampled at 2 fps (imaging's stride: every 14th frame),
# checked by eye. Dim background audience faces (frames 28-70, and the back rows of
# 224-266) are left out: no one could name them, and they are not counted either way.
_FRONT_ROW = [
    ("woman_a", (76, 100)),
    ("woman_striped", (196, 128)),
    ("obama", (352, 97)),
    ("michelle", (418, 132)),
    ("man_right", (612, 88)),
]
VIDEO_TRUTH: dict[int, list[tuple[str, tuple[int, int]]]] = {
    0: [("pianist", (69, 202)), ("lin_manuel_miranda", (545, 74))],
    14: [("pianist", (62, 202)), ("lin_manuel_miranda", (542, 74))],
    28: [("lin_manuel_miranda", (394, 216))],
    42: [("lin_manuel_miranda", (426, 248))],
    84: [("lin_manuel_miranda", (182, 110))],
    98: [("lin_manuel_miranda", (241, 134))],
    112: [("lin_manuel_miranda", (262, 138))],
    126: [("lin_manuel_miranda", (242, 82))],
    140: [("lin_manuel_miranda", (210, 90))],
    154: [("lin_manuel_miranda", (278, 94))],
    168: [("lin_manuel_miranda", (262, 98))],
    182: [("lin_manuel_miranda", (246, 73))],
    196: [("lin_manuel_miranda", (290, 90))],
    210: [("lin_manuel_miranda", (322, 90))],
    224: _FRONT_ROW,
    238: _FRONT_ROW,
    252: _FRONT_ROW,
    266: _FRONT_ROW,
}
ENROLLED = (
    "alex_lacamoire",
    "biden",
    "kit_harington",
    "lin_manuel_miranda",
    "obama",
    "rose_leslie",
)


@dataclass
class Sample:
    """One image or sampled frame with its ground truth."""

    name: str
    rgb: RGBImage
    truth: list[tuple[str, tuple[int, int]]]
    kind: str  # enrol | event | video


@dataclass
class Face:
    sample: str
    kind: str
    label: str | None
    found: FoundFace
    encodings: dict[str, FloatArray] = field(default_factory=dict)


def load_samples(faces: Path) -> list[Sample]:
    out: list[Sample] = []
    for folder in sorted((faces / "enrol").iterdir()):
        for path in sorted(folder.iterdir()):
            rgb = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS)
            out.append(
                Sample(f"enrol/{folder.name}/{path.name}", rgb, [(folder.name, (-1, -1))], "enrol")
            )
    for name, truth in EVENT_TRUTH.items():
        rgb = decode_image((faces / "events" / name).read_bytes(), max_pixels=MAX_PIXELS)
        out.append(Sample(f"events/{name}", rgb, truth, "event"))
    clip = faces / "video" / "short_hamilton_clip.mp4"
    for index, rgb in sample_video_frames(clip, fps=2.0):
        out.append(Sample(f"video/{index}", rgb, VIDEO_TRUTH.get(index, []), "video"))
    return out


def contains(box: Box4, point: tuple[int, int]) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= point[0] <= x2 and y1 <= point[1] <= y2


def css_to_xyxy(css: tuple[int, int, int, int]) -> Box4:
    top, right, bottom, left = css
    return float(left), float(top), float(right), float(bottom)


# --------------------------------------------------------------------------- detectors


def hog(rgb: RGBImage, upsample: int) -> list[Box4]:
    import face_recognition

    return [css_to_xyxy(b) for b in face_recognition.face_locations(rgb, upsample, "hog")]


@dataclass
class DetectorScore:
    found: int = 0
    truth: int = 0
    other: int = 0  # detections covering no listed face
    seconds: float = 0.0
    missed: list[str] = field(default_factory=list)


def score_detector(
    samples: Iterable[Sample], detect: Callable[[Sample], Boxes], repeats: int = 2
) -> DetectorScore:
    """Recall against the truth, and the best of ``repeats`` timings per image (the
    machine may be shared; the minimum is the least disturbed run)."""
    score = DetectorScore()
    for s in samples:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            boxes = detect(s)
            best = min(best, time.perf_counter() - t0)
        score.seconds += best
        for label, centre in s.truth:
            score.truth += 1
            if any(contains(b, centre) for b in boxes):
                score.found += 1
            else:
                score.missed.append(f"{s.name.split('/', 1)[1]}:{label}")
        score.other += sum(1 for b in boxes if not any(contains(b, c) for _, c in s.truth))
    return score


def detector_table(engine: FaceEngine, samples: list[Sample]) -> str:
    events = [s for s in samples if s.kind == "event"]
    video = [s for s in samples if s.kind == "video"]

    def cf(s: Sample) -> Boxes:
        found = engine.find_faces(s.rgb, rotations=s.kind != "video")
        return [css_to_xyxy(f.box) for f in found.faces]

    def hog_n(n: int) -> Callable[[Sample], Boxes]:
        return lambda s: hog(np.ascontiguousarray(s.rgb), n)

    def union(s: Sample) -> Boxes:
        return cf(s) + hog(np.ascontiguousarray(s.rgb), 1)

    detectors: list[tuple[str, Callable[[Sample], Boxes]]] = [
        ("HOG, upsample 0", hog_n(0)),
        ("HOG, upsample 1 (face_recognition default)", hog_n(1)),
        ("HOG, upsample 2", hog_n(2)),
        ("CenterFace as the engine runs it", cf),
        ("CenterFace + HOG upsample 1, union", union),
    ]
    engine.warm_up()
    cf(events[0])
    rows = []
    for name, fn in detectors:
        ev = score_detector(events, fn)
        vi = score_detector(video, fn)
        rows.append(
            [
                name,
                f"{ev.found}/{ev.truth}",
                str(ev.other),
                f"{ev.seconds / len(events):.2f}",
                f"{vi.found}/{vi.truth}",
                str(vi.other),
                f"{vi.seconds / len(video):.2f}",
                ", ".join(ev.missed + vi.missed) or "none",
            ]
        )
    header = [
        "detector",
        "event faces found",
        "event other detections",
        "event s/image",
        "video faces found",
        "video other detections",
        "video s/frame",
        "missed",
    ]
    return table(header, rows)


def second_pass_table(engine: FaceEngine, samples: list[Sample]) -> str:
    rows = []
    for s in samples:
        if s.kind != "event" or len(s.truth) != 1 or "obama-" in s.name:
            continue
        for k in (1, 2, 3):
            turned = np.ascontiguousarray(np.rot90(s.rgb, k))
            t0 = time.perf_counter()
            found = engine.find_faces(turned)
            dt = time.perf_counter() - t0
            rows.append(
                [
                    f"{s.name} rotated {90 * k}",
                    str(len(found.faces)),
                    "yes" if found.second_pass else "no",
                    f"{dt:.2f}",
                ]
            )
    h, w = 1080, 1920
    for name, rgb in [
        ("blank grey 1920x1080", np.full((h, w, 3), 128, np.uint8)),
        ("noise 1920x1080", np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)),
        ("blank grey 4032x3024", np.full((3024, 4032, 3), 128, np.uint8)),
    ]:
        t0 = time.perf_counter()
        found = engine.find_faces(rgb)
        dt = time.perf_counter() - t0
        rows.append(
            [name, str(len(found.faces)), "yes" if found.second_pass else "no", f"{dt:.2f}"]
        )
    return table(["image", "faces", "second pass ran", "seconds"], rows)


# --------------------------------------------------------------------------- faces


def collect_faces(engine: FaceEngine, samples: list[Sample]) -> list[Face]:
    out: list[Face] = []
    for s in samples:
        found = engine.find_faces(s.rgb, rotations=s.kind != "video").faces
        if s.kind == "enrol":
            biggest = max(found, key=lambda f: f.height_px)
            out.append(Face(s.name, s.kind, s.truth[0][0], biggest))
            continue
        for f in found:
            label = next((lab for lab, c in s.truth if contains(css_to_xyxy(f.box), c)), None)
            out.append(Face(s.name, s.kind, label, f))
    return out


def encode_variants(
    samples: list[Sample],
    faces: list[Face],
    hog_pairs: dict[int, Box4],
) -> None:
    import face_recognition_models as frm

    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    predictors = {
        "small": dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        "large": dlib.shape_predictor(frm.pose_predictor_model_location()),
    }
    images = {s.name: s for s in samples}
    for i, face in enumerate(faces):
        if face.found.rotation != 0:
            continue
        rgb = np.ascontiguousarray(images[face.sample].rgb)
        det = face.found.detection
        boxes = {
            "CenterFace box": (round(det.x1), round(det.y1), round(det.x2), round(det.y2)),
            "dlib-like box": dlib_like_box(det),
        }
        if i in hog_pairs:
            x1, y1, x2, y2 = hog_pairs[i]
            boxes["HOG box"] = (int(x1), int(y1), int(x2), int(y2))
        for bname, (left, top, right, bottom) in boxes.items():
            for pname, predictor in predictors.items():
                shape = predictor(rgb, dlib.rectangle(left, top, right, bottom))
                enc = np.asarray(net.compute_face_descriptor(rgb, shape, 1), dtype=np.float64)
                face.encodings[f"{bname}, {pname}"] = enc


def hog_matches(samples: list[Sample], faces: list[Face]) -> dict[int, Box4]:
    """Face index -> HOG (upsample 1) box covering the same face, where HOG found it."""
    by_sample: dict[str, list[tuple[float, float, float, float]]] = {}
    images = {s.name: s for s in samples}
    out: dict[int, Box4] = {}
    for i, face in enumerate(faces):
        if face.found.rotation != 0:
            continue
        if face.sample not in by_sample:
            by_sample[face.sample] = hog(np.ascontiguousarray(images[face.sample].rgb), 1)
        d = face.found.detection
        for b in by_sample[face.sample]:
            iw = min(b[2], d.x2) - max(b[0], d.x1)
            ih = min(b[3], d.y2) - max(b[1], d.y1)
            if iw > 0 and ih > 0 and iw * ih / ((b[2] - b[0]) * (b[3] - b[1])) > 0.5:
                out[i] = b
    return out


def box_fit(faces: list[Face], pairs: dict[int, Box4]) -> str:
    side, down, aspect = [], [], []
    for i, b in pairs.items():
        d = faces[i].found.detection
        side.append((b[2] - b[0]) / d.width)
        down.append(((b[1] + b[3]) / 2 - (d.y1 + d.y2) / 2) / d.height)
        aspect.append(d.height / d.width)
    s, dn, a = np.array(side), np.array(down), np.array(aspect)
    return (
        f"{len(pairs)} faces found by both detectors. CenterFace box height/width: median "
        f"{np.median(a):.2f}. HOG square side / CenterFace width: median {np.median(s):.3f} "
        f"(sd {s.std():.3f}). HOG centre below CenterFace centre, / CenterFace height: "
        f"median {np.median(dn):.3f} (sd {dn.std():.3f})."
    )


def gated(engine: FaceEngine, f: Face) -> bool:
    c = engine.config
    q = f.found
    return (
        q.height_px >= c.min_face_px
        and q.sharpness >= c.min_sharpness
        and abs(q.yaw) <= c.max_yaw
        and q.frontal >= c.min_frontal
    )


def operational(
    faces: list[Face], key: str, keep: Callable[[Face], bool]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Queries (event and video faces) against the enrol templates, min per identity.

    Returns genuine d (to own identity, enrolled queries), nearest-impostor d (all
    queries), and the genuine gap (second identity minus own)."""
    enrol = [f for f in faces if f.kind == "enrol" and key in f.encodings]
    templates = np.array([f.encodings[key] for f in enrol])
    labels = np.array([f.label for f in enrol])
    genuine, impostor, gap = [], [], []
    for f in faces:
        if f.kind == "enrol" or f.label is None or key not in f.encodings or not keep(f):
            continue
        d = np.linalg.norm(templates - f.encodings[key], axis=1)
        per = {lab: float(d[labels == lab].min()) for lab in ENROLLED}
        own = per.get(f.label)
        others = [v for lab, v in per.items() if lab != f.label]
        if own is not None:
            genuine.append(own)
            gap.append(min(others) - own)
        impostor.append(min(others))
    return np.array(genuine), np.array(impostor), np.array(gap)


def pairwise(
    faces: list[Face], key: str, keep: Callable[[Face], bool]
) -> tuple[FloatArray, FloatArray]:
    """All same-person and different-person pairs among labelled faces (not from one image)."""
    pool = [f for f in faces if f.label and key in f.encodings and keep(f)]
    same: list[float] = []
    diff: list[float] = []
    for a, b in itertools.combinations(pool, 2):
        if a.sample == b.sample:
            continue
        d = float(np.linalg.norm(a.encodings[key] - b.encodings[key]))
        (same if a.label == b.label else diff).append(d)
    return np.array(same), np.array(diff)


def fmt(x: float) -> str:
    return f"{x:.3f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def variant_table(engine: FaceEngine, faces: list[Face], pairs: dict[int, Box4]) -> str:
    hog_found = {id(faces[i]) for i in pairs}
    rows = []
    for key in [
        "CenterFace box, small",
        "CenterFace box, large",
        "dlib-like box, small",
        "dlib-like box, large",
        "HOG box, small",
        "HOG box, large",
    ]:
        g, imp, _ = operational(faces, key, lambda f: gated(engine, f) and id(f) in hog_found)
        rows.append(
            [
                key,
                fmt(g.mean()),
                fmt(g.max()),
                f"{int((g > 0.5).sum())}/{len(g)}",
                fmt(imp.min()),
                fmt(float(np.percentile(imp, 5))),
            ]
        )
    header = ["box, landmarks", "genuine mean", "genuine max", "genuine > 0.5"]
    header += ["nearest impostor min", "nearest impostor p5"]
    return table(header, rows)


def distribution_table(engine: FaceEngine, faces: list[Face], key: str) -> str:
    rows = []
    for name, keep in [
        ("all detected", lambda f: True),
        ("passing the quality floor", lambda f: gated(engine, f)),
    ]:
        same, diff = pairwise(faces, key, keep)
        rows.append(
            [
                name,
                str(len(same)),
                fmt(same.mean()),
                fmt(float(np.percentile(same, 95))),
                fmt(same.max()),
                str(len(diff)),
                fmt(diff.min()),
                fmt(float(np.percentile(diff, 1))),
                fmt(float(np.percentile(diff, 5))),
                fmt(diff.mean()),
            ]
        )
    header = ["faces", "same-person pairs", "same mean", "same p95", "same max"]
    header += ["different-person pairs", "diff min", "diff p1", "diff p5", "diff mean"]
    return table(header, rows)


def sweep_table(engine: FaceEngine, faces: list[Face], key: str) -> str:
    _, imp_all, _ = operational(faces, key, lambda f: True)
    g, imp, _ = operational(faces, key, lambda f: gated(engine, f))
    _, diff_all = pairwise(faces, key, lambda f: True)
    _, diff = pairwise(faces, key, lambda f: gated(engine, f))

    def rate(x: FloatArray, t: float) -> str:
        return f"{(x <= t).mean():.2%} ({int((x <= t).sum())}/{len(x)})"

    rows = [
        [
            f"{t:.2f}",
            rate(diff_all, t),
            rate(diff, t),
            f"{int((imp_all <= t).sum())}/{len(imp_all)}",
            f"{int((imp <= t).sum())}/{len(imp)}",
            f"{int((g > t).sum())}/{len(g)}",
        ]
        for t in (0.40, 0.45, 0.50, 0.55, 0.60)
    ]
    header = [
        "threshold",
        "different-person pairs within threshold, all faces",
        "same, quality floor",
        "impostor queries vs gallery within threshold, all faces",
        "same, quality floor",
        "genuine queries rejected, quality floor",
    ]
    return table(header, rows)


def tail_text(engine: FaceEngine, faces: list[Face], key: str) -> str:
    """Normal fit to the different-person distances above the quality floor, to put a
    number on tails this small sample cannot show (a model, not a measurement)."""
    _, diff = pairwise(faces, key, lambda f: gated(engine, f))
    mu, sd = float(diff.mean()), float(diff.std(ddof=1))
    parts = [f"Different-person pairs above the quality floor: mean {fmt(mu)}, sd {fmt(sd)}."]
    for t in (0.45, 0.5, 0.6):
        p = 0.5 * math.erfc((mu - t) / (sd * math.sqrt(2)))
        galleries = ", ".join(f"{n}: {1 - (1 - p) ** n:.1e}" for n in (100, 1000))
        parts.append(
            f"At {t}: fitted P(pair within threshold) {p:.1e}; chance that an unenrolled "
            f"face is within threshold of someone in a gallery of N pupils ({galleries})."
        )
    return " ".join(parts)


def margin_text(engine: FaceEngine, faces: list[Face], key: str) -> str:
    g, _, gap = operational(faces, key, lambda f: gated(engine, f))
    within = gap[g <= engine.config.threshold]
    # Template noise: how differently a pupil's two templates see the same query.
    enrol = [f for f in faces if f.kind == "enrol"]
    noise = []
    for f in faces:
        if f.kind == "enrol" or f.label not in ENROLLED or not gated(engine, f):
            continue
        own = [e.encodings[key] for e in enrol if e.label == f.label]
        if len(own) == 2:
            d = [float(np.linalg.norm(t - f.encodings[key])) for t in own]
            noise.append(abs(d[0] - d[1]))
    n = np.array(noise)
    return (
        f"Genuine queries within threshold {engine.config.threshold}: {len(within)}; their gap "
        f"d2 - d1 (next identity minus own): min {fmt(within.min())}, p5 "
        f"{fmt(float(np.percentile(within, 5)))}, median {fmt(float(np.median(within)))}. "
        f"Same query against a pupil's two templates, |d(t1) - d(t2)|: n={len(n)}, median "
        f"{fmt(float(np.median(n)))}, p90 {fmt(float(np.percentile(n, 90)))}, max {fmt(n.max())}."
    )


def blur_table(engine: FaceEngine, samples: list[Sample], faces: list[Face]) -> str:
    key = "dlib-like box, small"
    labels = np.array([f.label for f in faces if f.kind == "enrol"])
    templates = np.array([f.encodings[key] for f in faces if f.kind == "enrol"])
    encoder = Encoder()
    images = {s.name: s for s in samples}
    rows = []
    for name in ("events/johnsnow_test1.jpg", "events/obama-240p.jpg", "events/two_people.jpg"):
        s = images[name]
        label, centre = s.truth[0]
        base = next(f for f in faces if f.sample == name and f.label == label)
        for frac in (0.0, 0.01, 0.02, 0.03, 0.05):
            sigma = frac * base.found.height_px
            rgb = (
                s.rgb if frac == 0 else np.asarray(cv2.GaussianBlur(s.rgb, (0, 0), sigma), np.uint8)
            )
            hit = [f for f in engine.find_faces(rgb).faces if contains(css_to_xyxy(f.box), centre)]
            if not hit:
                rows.append([name, f"{frac:.2f}", "-", "not detected", "-"])
                continue
            enc = encoder.encode(rgb, [hit[0].detection])[0]
            d = np.linalg.norm(templates - enc, axis=1)
            own, other = float(d[labels == label].min()), float(d[labels != label].min())
            rows.append([name, f"{frac:.2f}", f"{hit[0].sharpness:.1f}", fmt(own), fmt(other)])
    header = ["photo", "blur sigma / face height", "sharpness", "own templates", "nearest other"]
    return table(header, rows)


def quality_table(faces: list[Face]) -> str:
    rows = [
        [
            f"{f.sample} {f.label}",
            f"{f.found.height_px:.0f}",
            f"{f.found.sharpness:.1f}",
            f"{f.found.yaw:+.2f}",
            f"{f.found.frontal:.2f}",
        ]
        for f in faces
        if f.label is not None
    ]
    return table(["face", "height px", "sharpness", "yaw proxy", "frontal ratio"], rows)


def quality_summary(engine: FaceEngine, faces: list[Face]) -> str:
    groups: dict[str, list[Face]] = {
        "enrol photos (largest face)": [f for f in faces if f.kind == "enrol"],
        "event faces (labelled)": [f for f in faces if f.kind == "event" and f.label],
        "video faces (labelled)": [f for f in faces if f.kind == "video" and f.label],
        "video faces (unlabelled: dim audience, back rows)": [
            f for f in faces if f.kind == "video" and not f.label
        ],
    }
    rows = []
    for name, group in groups.items():
        if not group:
            continue
        q = [f.found for f in group]
        passed = sum(gated(engine, f) for f in group)
        rows.append(
            [
                name,
                str(len(group)),
                f"{min(x.height_px for x in q):.0f}-{max(x.height_px for x in q):.0f}",
                f"{min(x.sharpness for x in q):.1f}-{max(x.sharpness for x in q):.0f}",
                f"{min(abs(x.yaw) for x in q):.2f}-{max(abs(x.yaw) for x in q):.2f}",
                f"{min(x.frontal for x in q):.2f}-{max(x.frontal for x in q):.2f}",
                f"{passed}/{len(group)}",
            ]
        )
    header = ["faces", "n", "height px", "sharpness", "abs yaw proxy", "frontal ratio"]
    header += ["pass screening floor"]
    return table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "calibration.md")
    args = parser.parse_args()
    if not args.faces.is_dir():
        sys.exit(
            f"{args.faces} not found; run `make test-data` for how to get the public test images"
        )
    engine = FaceEngine(EngineConfig())
    samples = load_samples(args.faces)
    parts = ["# Calibration measurements (bench/calibrate.py)\n"]
    parts += ["## Detectors\n", detector_table(engine, samples), ""]
    parts += ["## Second pass\n", second_pass_table(engine, samples), ""]
    faces = collect_faces(engine, samples)
    pairs = hog_matches(samples, faces)
    parts += ["## Box geometry\n", box_fit(faces, pairs), ""]
    encode_variants(samples, faces, pairs)
    parts += ["## Encoder variants (faces found by both detectors, quality floor)\n"]
    parts += [variant_table(engine, faces, pairs), ""]
    key = "dlib-like box, small"
    parts += [f"## Distance distributions ({key})\n", distribution_table(engine, faces, key), ""]
    g, imp, _ = operational(faces, key, lambda f: gated(engine, f))
    parts += [
        f"Operational (event/video faces vs enrol templates, quality floor): genuine n={len(g)} "
        f"mean {fmt(g.mean())} median {fmt(float(np.median(g)))} p90 "
        f"{fmt(float(np.percentile(g, 90)))} max {fmt(g.max())}; nearest impostor n={len(imp)} "
        f"min {fmt(imp.min())} p5 {fmt(float(np.percentile(imp, 5)))} median "
        f"{fmt(float(np.median(imp)))}.\n",
    ]
    parts += ["## Threshold sweep\n", sweep_table(engine, faces, key), ""]
    parts += ["## Tail model\n", tail_text(engine, faces, key), ""]
    parts += ["## Margin\n", margin_text(engine, faces, key), ""]
    parts += ["## Blur\n", blur_table(engine, samples, faces), ""]
    parts += ["## Quality measures\n", quality_summary(engine, faces), ""]
    parts += ["### Every labelled face\n", quality_table(faces), ""]
    text = "\n".join(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
