"""Scoring found faces and decisions against the ground truth of bench/synth.py.

A detection belongs to a ground-truth face when their boxes overlap with IoU >= 0.3, or
failing that when each box contains the other's centre (face_recognition's HOG boxes are
squarer and smaller than the engine's, IoU about 0.7 on the same face). Each face takes
at most one detection as its own, best overlap first; a further detection on the same
face still counts against it if it names someone (a duplicate that names a stranger as a
pupil is a false match all the same). A detection that belongs to no face is spurious.

Figures (``Summary``):

* recall by band: faces wholly inside the image (the small faces behind large ones
  included), found / all;
* false matches: stranger faces that any detection names as a gallery identity, plus
  spurious detections that name one (both must be 0);
* wrong identity: gallery faces named as another gallery identity;
* true accept: clear gallery faces (``TruthFace.clear``) named as themselves and nobody
  else, over all clear gallery faces (a missed face is not accepted);
* uncertain rate: found faces whose own detection is ``uncertain``, over found faces.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.synth import Truth, TruthFace, band_names
from workers.engine.types import Box, ScreenedFace, box_iou

IOU_MIN = 0.3


@dataclass(frozen=True)
class Found:
    """One face a pipeline reported. ``names``: gallery identities it was named as."""

    box: Box  # top, right, bottom, left
    status: str  # matched | unknown | uncertain
    names: tuple[str, ...] = ()


def from_screened(faces: Iterable[ScreenedFace]) -> list[Found]:
    return [
        Found(f.box, f.status, (f.pupil_id,) if f.status == "matched" and f.pupil_id else ())
        for f in faces
    ]


def _contains_centre(outer: Box, inner: Box) -> bool:
    top, right, bottom, left = outer
    cy, cx = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return left <= cx <= right and top <= cy <= bottom


def _affinity(t: Box, d: Box) -> float:
    overlap = box_iou(t, d)
    if overlap >= IOU_MIN:
        return overlap
    if _contains_centre(t, d) and _contains_centre(d, t):
        return 0.01
    return 0.0


@dataclass(frozen=True)
class FaceResult:
    truth: TruthFace
    image: str
    found: bool
    status: str | None  # of the face's own detection
    names: frozenset[str]  # named by any detection that belongs to the face

    @property
    def false_match(self) -> bool:
        return not self.truth.enrolled and bool(self.names)

    @property
    def wrong_identity(self) -> bool:
        return self.truth.enrolled and bool(self.names - {self.truth.person})

    @property
    def accepted(self) -> bool:
        return self.truth.enrolled and self.names == {self.truth.person}


@dataclass(frozen=True)
class ImageResult:
    image: str
    faces: list[FaceResult]
    spurious: list[Found]


def score_image(truth: Truth, found: Sequence[Found]) -> ImageResult:
    pairs = sorted(
        (
            (a, ti, di)
            for ti, t in enumerate(truth.faces)
            for di, d in enumerate(found)
            if (a := _affinity(t.box, d.box)) > 0
        ),
        reverse=True,
    )
    own: dict[int, int] = {}
    taken: set[int] = set()
    for _a, ti, di in pairs:
        if ti not in own and di not in taken:
            own[ti] = di
            taken.add(di)
    extra: dict[int, list[int]] = {}
    spurious: list[Found] = []
    for di, d in enumerate(found):
        if di in taken:
            continue
        best = max(((a, ti) for a, ti, dj in pairs if dj == di), default=None, key=lambda x: x[0])
        if best is None:
            spurious.append(d)
        else:
            extra.setdefault(best[1], []).append(di)
    faces = []
    for ti, t in enumerate(truth.faces):
        mine = ([own[ti]] if ti in own else []) + extra.get(ti, [])
        names = frozenset(n for di in mine for n in found[di].names)
        faces.append(
            FaceResult(
                truth=t,
                image=truth.image,
                found=ti in own,
                status=found[own[ti]].status if ti in own else None,
                names=names,
            )
        )
    return ImageResult(truth.image, faces, spurious)


@dataclass(frozen=True)
class Ratio:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def __str__(self) -> str:
        v = self.value
        return "-" if v is None else f"{v:.3f} ({self.hits}/{self.total})"

    def pct(self) -> str:
        v = self.value
        return "-" if v is None else f"{100 * v:.1f}% ({self.hits}/{self.total})"


def _ratio(items: Iterable[FaceResult], hit: str) -> Ratio:
    pool = list(items)
    return Ratio(sum(bool(getattr(r, hit)) for r in pool), len(pool))


@dataclass(frozen=True)
class Summary:
    images: int
    faces: int
    recall_by_band: dict[str, Ratio]
    uncertain_by_band: dict[str, Ratio]
    accept_by_band: dict[str, Ratio]  # whole gallery faces named as themselves
    recall_32_up: Ratio
    recall_whole: Ratio  # every whole face, all sizes
    partial_recall: Ratio
    behind_recall: Ratio
    behind_named: int
    false_matches: int
    false_match_faces: list[FaceResult] = field(repr=False)
    spurious_named: int = 0
    spurious: int = 0
    wrong_identity: int = 0
    wrong_identity_faces: list[FaceResult] = field(default_factory=list, repr=False)
    true_accept_clear: Ratio = Ratio(0, 0)
    uncertain: Ratio = Ratio(0, 0)
    partial_named_wrong: int = 0
    # Whole gallery faces not accepted, per band: how many were missed, unknown, uncertain
    # or named as someone else.
    not_accepted_by_band: dict[str, dict[str, int]] = field(default_factory=dict)
    missed_faces: list[FaceResult] = field(default_factory=list, repr=False)


def _whole(r: FaceResult) -> bool:
    return r.truth.visible >= 0.999


def summarise(results: Sequence[ImageResult]) -> Summary:
    faces = [f for r in results for f in r.faces]
    whole = [f for f in faces if _whole(f)]
    bands = band_names()
    by_band = {b: [f for f in whole if f.truth.band == b] for b in bands}
    found = [f for f in faces if f.found]

    def unc(pool: Iterable[FaceResult]) -> Ratio:
        pool = [f for f in pool if f.found]
        return Ratio(sum(f.status == "uncertain" for f in pool), len(pool))

    false_faces = [f for f in faces if f.false_match]
    wrong_faces = [f for f in faces if f.wrong_identity]
    spurious = [d for r in results for d in r.spurious]
    behind = [f for f in faces if f.truth.role == "behind"]
    return Summary(
        images=len(results),
        faces=len(faces),
        recall_by_band={b: _ratio(by_band[b], "found") for b in bands},
        uncertain_by_band={b: unc(by_band[b]) for b in bands},
        accept_by_band={
            b: _ratio((f for f in by_band[b] if f.truth.enrolled), "accepted") for b in bands
        },
        recall_32_up=_ratio((f for f in whole if f.truth.height_px >= 32), "found"),
        recall_whole=_ratio(whole, "found"),
        partial_recall=_ratio((f for f in faces if not _whole(f)), "found"),
        behind_recall=_ratio(behind, "found"),
        behind_named=sum(bool(f.names) for f in behind),
        false_matches=len(false_faces) + sum(bool(d.names) for d in spurious),
        false_match_faces=false_faces,
        spurious_named=sum(bool(d.names) for d in spurious),
        spurious=len(spurious),
        wrong_identity=len(wrong_faces),
        wrong_identity_faces=wrong_faces,
        true_accept_clear=_ratio(
            (f for f in faces if f.truth.enrolled and f.truth.clear), "accepted"
        ),
        uncertain=unc(found),
        partial_named_wrong=sum(
            (f.false_match or f.wrong_identity) for f in faces if not _whole(f)
        ),
        not_accepted_by_band={
            b: dict(
                collections.Counter(
                    _outcome(f) for f in by_band[b] if f.truth.enrolled and not f.accepted
                )
            )
            for b in bands
        },
        missed_faces=[f for f in faces if not f.found],
    )


def _outcome(f: FaceResult) -> str:
    if f.wrong_identity:
        return "wrong"
    if not f.found:
        return "missed"
    return f.status or "missed"
