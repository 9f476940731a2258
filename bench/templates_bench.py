"""Enrolment templates: jitter (face_recognition's ``num_jitters``) and several templates
per pupil, measured on the shared faces and on synthetic class photos.

    .venv/bin/python bench/templates_bench.py [--faces ../shared/faces] [--synth-count 16]
                                              [--report bench/REPORT.md]

``make bench`` runs it after screen_bench.py. It prints markdown and puts it in the
report between the markers ``<!-- templates_bench -->`` and ``<!-- /templates_bench -->``
(replacing an earlier copy, appending when there is none). The reasoning and the chosen
values are in docs/calibration.md, "Enrolment templates".

Method (shared faces). Each photograph is one *source*; photographs that are the same
picture (two_people = obama3 = biden_a; obama_a = obama-240p ... 1080p = obama_small, see
bench/synth.py) form one source, and the sampled video frames are one source. A source
eligible as a template is any face that passes the enrolment gate as the service applies
it: a reference photo as it is, and a face in an event photo cut out with
``crop_for_template`` (what SLT's "add as template" does). Then, leaving out one source
at a time: the gallery holds, for every enrolled identity, k templates from *other*
sources (enrol photos first, then event faces; every k-combination of the held-out
identities' sources in turn), and the held-out source's faces above the screening
quality floor are the queries, encoded as screening encodes them. A query is

* a true accept when the engine's decision rule (threshold, margin) names its own
  identity; "d <= threshold" counts the distance alone;
* a false match when it names any identity that is not its own (strangers included:
  the unknown child and the audience in the clip are never in the gallery);
* "nearest stranger" is the smallest distance from any query to an identity that is
  not its own (the margin between the threshold and a false match).

An identity counts towards the true accepts of row k only if it has k sources besides
the held-out one. Synthetic photos (bench/synth.py, gallery obama, kit_harington,
alex_lacamoire, faces from event photos) are scored with bench/scoring.py.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import synth  # noqa: E402
from bench.calibrate import EVENT_TRUTH, VIDEO_TRUTH, contains, css_to_xyxy  # noqa: E402
from bench.scoring import Found, score_image, summarise  # noqa: E402
from workers.engine.encode import crop_for_template  # noqa: E402
from workers.engine.engine import EngineConfig, FaceEngine  # noqa: E402
from workers.engine.imaging import decode_image, sample_video_frames  # noqa: E402
from workers.engine.match import Gallery  # noqa: E402
from workers.engine.types import (  # noqa: E402
    EnrolmentRejected,
    GalleryEntry,
    RGBImage,
    box_iou,
)

FloatArray = npt.NDArray[np.float64]
MAX_PIXELS = 100_000_000
JITTERS = (1, 5, 10, 20)
TEMPLATE_COUNTS = (1, 2, 3)
START, END = "<!-- templates_bench -->", "<!-- /templates_bench -->"
# Same photograph, different files (bench/synth.py explains how this was found).
SAME_PICTURE = {
    "events/two_people.jpg": "two_people",
    "events/obama3.jpg": "two_people",
    "enrol/biden/biden_a.jpg": "two_people",
    "enrol/obama/obama_a.jpg": "obama_a",
    "events/obama-240p.jpg": "obama_a",
    "events/obama-480p.jpg": "obama_a",
    "events/obama-720p.jpg": "obama_a",
    "events/obama-1080p.jpg": "obama_a",
    "events/obama_small.jpg": "obama_a",
}
ENROLLED = ("alex_lacamoire", "biden", "kit_harington", "lin_manuel_miranda", "obama",
            "rose_leslie")


@dataclass
class Query:
    source: str
    label: str  # an ENROLLED identity, or a stranger's label
    encoding: FloatArray


@dataclass
class TemplateSource:
    source: str
    identity: str
    kind: str  # reference | event
    name: str  # file (and face) it came from
    # jitters -> one template per random draw (dlib's jitter is random; 1 is exact)
    templates: dict[int, list[FloatArray]] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)  # jitters -> enrolment time


def source_of(name: str) -> str:
    return SAME_PICTURE.get(name, "video" if name.startswith("video/") else name)


def load(faces: Path, rel: str) -> RGBImage:
    return decode_image((faces / rel).read_bytes(), max_pixels=MAX_PIXELS)


def enrol(engine: FaceEngine, rgb: RGBImage) -> tuple[FloatArray | None, float]:
    start = time.perf_counter()
    try:
        template = engine.reference_template(rgb)
    except EnrolmentRejected:
        return None, time.perf_counter() - start
    return np.asarray(template, dtype=np.float64), time.perf_counter() - start


def collect(faces: Path, engines: dict[int, FaceEngine], repeats: int) -> tuple[
        list[Query], list[TemplateSource]]:
    """Every screenable labelled face as a query, and every face that passes the
    enrolment gate as a template source (at each jitter count)."""
    screen = engines[1]
    queries: list[Query] = []
    sources: list[TemplateSource] = []
    images: list[tuple[str, RGBImage, list[tuple[str, tuple[int, int]]]]] = []
    for folder in sorted((faces / "enrol").iterdir()):
        for path in sorted(folder.iterdir()):
            rel = f"enrol/{folder.name}/{path.name}"
            images.append((rel, load(faces, rel), [(folder.name, (-1, -1))]))
    for name, truth in EVENT_TRUTH.items():
        images.append((f"events/{name}", load(faces, f"events/{name}"), truth))
    clip = faces / "video" / "short_hamilton_clip.mp4"
    for index, rgb in sample_video_frames(clip, fps=2.0):
        if VIDEO_TRUTH.get(index):
            images.append((f"video/{index}", rgb, VIDEO_TRUTH[index]))
    for rel, rgb, truth in images:
        found = screen.find_faces(rgb, rotations=not rel.startswith("video/"))
        usable = screen.screenable_indices(found)
        encodings = screen.screening_encodings(found, usable) if usable else None
        reference = rel.startswith("enrol/")
        for k, i in enumerate(usable):
            face = found.faces[i]
            if reference:
                if face is not max(found.faces, key=lambda f: f.height_px):
                    continue
                label: str | None = truth[0][0]
            else:
                label = next((lab for lab, c in truth if contains(css_to_xyxy(face.box), c)),
                             None)
            if label is None or encodings is None:
                continue
            queries.append(Query(source_of(rel), label, encodings[k]))
        # Template sources: the reference photo itself, or each labelled enrolled face
        # of an event photo cut out as SLT's "add as template" cuts it.
        candidates: list[tuple[str, str, RGBImage]] = []
        if reference:
            candidates.append((truth[0][0], rel, rgb))
        elif not rel.startswith("video/"):
            for face in found.faces:
                label = next((lab for lab, c in truth if contains(css_to_xyxy(face.box), c)),
                             None)
                if label in ENROLLED:
                    candidates.append((label, f"{rel} ({label})", crop_for_template(rgb, face.box)))
        for identity, name, picture in candidates:
            ts = TemplateSource(source_of(rel), identity, "reference" if reference else "event",
                                name)
            for jitters, engine in engines.items():
                for _draw in range(1 if jitters == 1 else repeats):
                    template, seconds = enrol(engine, picture)
                    if template is None:
                        break
                    ts.templates.setdefault(jitters, []).append(template)
                    ts.seconds[jitters] = min(seconds, ts.seconds.get(jitters, seconds))
                if jitters not in ts.templates:
                    break
            if ts.templates:
                sources.append(ts)
    return queries, sources


@dataclass
class Tally:
    genuine: int = 0
    accepted: int = 0
    under_threshold: int = 0
    false_matches: int = 0
    queries: int = 0
    nearest_stranger: float = float("inf")
    genuine_distances: list[float] = field(default_factory=list)
    # Genuine queries not accepted: (held-out source, identity) -> own distances.
    misses: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def row(self) -> list[str]:
        pct = (100 * self.accepted / self.genuine) if self.genuine else float("nan")
        under = (100 * self.under_threshold / self.genuine) if self.genuine else float("nan")
        mean = float(np.mean(self.genuine_distances)) if self.genuine_distances else float("nan")
        return [f"{pct:.1f}% ({self.accepted}/{self.genuine})",
                f"{under:.1f}%", f"{mean:.3f}", str(self.false_matches),
                f"{self.nearest_stranger:.3f}", str(self.queries)]  # last: decisions


def _ordered(sources: Sequence[TemplateSource], identity: str, held_out: str,
             jitters: int) -> list[TemplateSource]:
    mine = [s for s in sources if s.identity == identity and s.source != held_out
            and jitters in s.templates]
    # Reference photos first: they are what every pupil has; event faces are extras.
    return sorted(mine, key=lambda s: (s.kind != "reference", s.name))


def leave_one_out(queries: Sequence[Query], sources: Sequence[TemplateSource], *,
                  jitters: int, k: int, threshold: float, margin: float,
                  min_sources: int = 0, draw: int = 0) -> Tally:
    """``min_sources``: count true accepts only for identities with at least this many
    sources besides the held-out one (at least k), so rows of different k can share
    one query set."""
    tally = Tally()
    for held_out in sorted({q.source for q in queries}):
        held = [q for q in queries if q.source == held_out]
        present = {q.label for q in held if q.label in ENROLLED}
        pools = {ident: _ordered(sources, ident, held_out, jitters) for ident in ENROLLED}
        combos = {ident: list(itertools.combinations(pool, min(k, len(pool))))
                  for ident, pool in pools.items()}
        rounds = max([len(combos[i]) for i in present if combos[i]], default=1)
        for r in range(rounds):
            entries = [
                GalleryEntry(ident, ts.templates[jitters][draw % len(ts.templates[jitters])])
                for ident, options in combos.items() if options
                for ts in options[r % len(options)]
            ]
            gallery = Gallery.from_entries(entries)
            encodings = np.array([q.encoding for q in held])
            decisions = gallery.decide(encodings, threshold=threshold, margin=margin)
            per_pupil = gallery.distances(encodings)
            for q, d, row in zip(held, decisions, per_pupil, strict=True):
                tally.queries += 1
                others = [float(row[j]) for j, p in enumerate(gallery.pupil_ids) if p != q.label]
                tally.nearest_stranger = min([tally.nearest_stranger, *others])
                if d.status == "matched" and d.pupil_id != q.label:
                    tally.false_matches += 1
                if q.label in ENROLLED and len(pools[q.label]) >= max(k, min_sources):
                    own = float(row[gallery.pupil_ids.index(q.label)])
                    tally.genuine += 1
                    tally.genuine_distances.append(own)
                    tally.under_threshold += own <= threshold
                    hit = d.status == "matched" and d.pupil_id == q.label
                    tally.accepted += hit
                    if not hit:
                        tally.misses.setdefault((held_out, q.label), []).append(own)
    return tally


# ------------------------------------------------------------------ synthetic photos


@dataclass
class SynthFaces:
    truth: synth.Truth
    boxes: list[tuple[int, int, int, int]]
    usable: list[int]
    encodings: FloatArray | None


def screen_synth(engine: FaceEngine, paths: Sequence[Path]) -> list[SynthFaces]:
    out = []
    for path in paths:
        rgb = decode_image(path.read_bytes(), max_pixels=MAX_PIXELS)
        found = engine.find_faces(rgb, rotations=True)
        usable = engine.screenable_indices(found)
        encodings = engine.screening_encodings(found, usable) if usable else None
        out.append(SynthFaces(synth.load_truth(path), [f.box for f in found.faces], usable,
                              encodings))
    return out


def synth_row(faces: Sequence[SynthFaces], gallery: Gallery, *, threshold: float,
              margin: float) -> list[str]:
    results = []
    nearest = float("inf")
    for img in faces:
        found = [Found(box, "uncertain") for box in img.boxes]
        if img.encodings is not None:
            decisions = gallery.decide(img.encodings, threshold=threshold, margin=margin)
            for i, d in zip(img.usable, decisions, strict=True):
                names = (d.pupil_id,) if d.status == "matched" and d.pupil_id else ()
                found[i] = Found(img.boxes[i], d.status, names)
        result = score_image(img.truth, found)
        results.append(result)
        if img.encodings is None:
            continue
        dist = gallery.distances(img.encodings)
        for k, i in enumerate(img.usable):
            owner = next((f.truth for f in result.faces if f.found
                          and _owns(f.truth.box, img.boxes[i])), None)
            if owner is None:
                continue
            others = [float(dist[k, j]) for j, p in enumerate(gallery.pupil_ids)
                      if p != owner.identity]
            nearest = min([nearest, *others])
    s = summarise(results)
    return [s.true_accept_clear.pct(), str(s.false_matches), str(s.wrong_identity),
            f"{nearest:.3f}"]


def _owns(truth_box: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> bool:
    return box_iou(truth_box, box) >= 0.3


# ------------------------------------------------------------------ report


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def put_section(report: Path, text: str) -> None:
    old = report.read_text() if report.exists() else ""
    block = f"{START}\n{text.rstrip()}\n{END}\n"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + tail
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block
    report.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--synth-count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=3,
                        help="jittered templates computed this many times (random draws)")
    parser.add_argument("--report", type=Path, default=ROOT / "bench" / "REPORT.md")
    args = parser.parse_args()
    if not args.faces.is_dir():
        sys.exit(f"{args.faces} not found; run `make test-data` for how to get the test images")
    load_avg = os.getloadavg()[0]
    base = EngineConfig()
    engines = {j: FaceEngine(EngineConfig(enrol_jitters=j)) for j in JITTERS}
    engines[1].warm_up()
    t0 = time.perf_counter()
    queries, sources = collect(args.faces, engines, args.draws)
    th, mg = base.threshold, base.margin
    lines = ["## Enrolment templates: jitter and several templates per pupil", "",
             "`.venv/bin/python bench/templates_bench.py` (method in its docstring and in "
             "docs/calibration.md, \"Enrolment templates\"). Threshold "
             f"{th}, margin {mg}; queries are encoded once, as screening encodes them.", ""]
    refs = [s for s in sources if s.kind == "reference"]
    events = [s for s in sources if s.kind == "event"]
    lines += [f"Shared faces: {len(queries)} query faces ("
              f"{sum(q.label in ENROLLED for q in queries)} of enrolled identities), "
              f"{len(refs)} reference photos and {len(events)} event faces that pass the "
              "enrolment gate (" + ", ".join(s.name for s in events) + ").", ""]
    lines += ["### Jitter, one template per identity (leave one source out)", ""]
    rows = []
    for j in JITTERS:
        draws = [leave_one_out(queries, sources, jitters=j, k=1, threshold=th, margin=mg,
                               draw=d) for d in range(1 if j == 1 else args.draws)]
        t = draws[0]
        accepts = [x.accepted for x in draws]
        times = [s.seconds[j] for s in refs if j in s.seconds]
        rows.append([str(j), *t.row()[:-1], f"{min(accepts)}-{max(accepts)}",
                     str(max(x.false_matches for x in draws)),
                     f"{min(x.nearest_stranger for x in draws):.3f}", f"{np.mean(times):.2f}"])
    lines += [table(["num_jitters", "true accepts (rule), draw 1", "d <= threshold",
                     "genuine mean d", "false matches", "nearest stranger",
                     f"true accepts over {args.draws} draws", "false matches, worst draw",
                     "nearest stranger, worst draw", "enrolment s/photo"], rows), ""]
    for j in (1, 10):
        t = leave_one_out(queries, sources, jitters=j, k=1, threshold=th, margin=mg)
        missed = "; ".join(
            f"{src} ({ident}): {len(ds)} at {min(ds):.3f}-{max(ds):.3f}"
            for (src, ident), ds in sorted(t.misses.items()))
        lines += [f"Not accepted at num_jitters={j}: {missed or 'none'}.", ""]
    lines += ["Enrolment time is `FaceEngine.reference_template` per reference photo "
              "(decode excluded, detection included; best of the draws), mean over the "
              "reference photos, on a machine shared with other jobs. dlib's jitter is "
              "random, so jittered templates were computed in several draws; the first "
              "columns are the first draw.", ""]
    lines += ["### Several templates per identity (leave one source out)", ""]
    rows = []
    for j in (1, 10):
        for k in TEMPLATE_COUNTS:
            t = leave_one_out(queries, sources, jitters=j, k=k, threshold=th, margin=mg)
            rows.append([str(j), str(k), *t.row()])
    lines += [table(["num_jitters", "templates", "true accepts (rule)", "d <= threshold",
                     "genuine mean d", "false matches", "nearest stranger", "decisions"],
                    rows), ""]
    lines += ["Row k counts the true accepts of identities with at least k template "
              "sources besides the held-out one (so the rows do not share one query set: "
              "lin_manuel_miranda, with one source, is only in row 1); each identity's "
              "pupil distance is the minimum over its templates (workers/engine/match.py).",
              ""]
    most = max(TEMPLATE_COUNTS)
    lines += [f"### Several templates, same queries (identities with at least {most} "
              "other sources)", ""]
    rows = []
    for j in (1, 10):
        for k in TEMPLATE_COUNTS:
            t = leave_one_out(queries, sources, jitters=j, k=k, threshold=th, margin=mg,
                              min_sources=most)
            rows.append([str(j), str(k), *t.row()])
    lines += [table(["num_jitters", "templates", "true accepts (rule)", "d <= threshold",
                     "genuine mean d", "false matches", "nearest stranger", "decisions"],
                    rows), ""]
    lines += ["Every row here counts the same held-out sources and identities; rows "
              "with more templates average over more template combinations.", ""]

    with tempfile.TemporaryDirectory() as tmp:
        cuts = synth.cut_faces(args.faces, engines[1])
        paths = synth.generate(Path(tmp), cuts, synth.plan(args.synth_count), seed=args.seed)
        screened = screen_synth(engines[1], paths)
    gallery_photos = synth.gallery_paths(args.faces)
    rows = []
    for j in JITTERS:
        for k in (1, 2):
            entries = []
            for person, photos in sorted(gallery_photos.items()):
                for path in photos[:k]:
                    template, _s = enrol(engines[j], load(args.faces, str(
                        path.relative_to(args.faces))))
                    if template is not None:
                        entries.append(GalleryEntry(person, template))
            gallery = Gallery.from_entries(entries)
            rows.append([str(j), str(k), *synth_row(screened, gallery, threshold=th,
                                                     margin=mg)])
    lines += ["### Synthetic class photos", "",
              f"{len(paths)} images from `bench/synth.py` (count {args.synth_count}, seed "
              f"{args.seed}); templates from the gallery identities' enrol/ photos (the first "
              "k of them).", "",
              table(["num_jitters", "templates", "true accepts (clear faces)",
                     "false matches", "wrong identity", "nearest stranger"], rows), "",
              f"Whole run: {time.perf_counter() - t0:.0f} s on {platform.machine()}, "
              f"{os.cpu_count()} CPUs; load average before the run {load_avg:.2f} (enrolment "
              "times grow with it; distances do not).", ""]
    text = "\n".join(lines)
    print(text)
    put_section(args.report, text)


if __name__ == "__main__":
    main()
