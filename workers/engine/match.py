"""Open-set matching of face encodings against one organisation's consented pupils.

Decision rule for one query face (distances are Euclidean between dlib encodings;
a pupil's distance is the minimum over that pupil's templates):

* ``d1`` = distance to the nearest pupil, ``d2`` = to the second-nearest *other* pupil;
* matched   if ``d1 <= threshold`` and (only one pupil, or ``d2 - d1 >= margin``);
* unknown   if ``d1 > threshold`` (or the gallery is empty);
* uncertain if ``d1 <= threshold`` but another pupil is within ``margin`` of it, or the
  encoding is not finite. Neither unknown nor uncertain ever names a pupil as *the*
  answer, but ``decide`` lists as candidates every pupil within ``threshold + margin``
  (nearest first), so that a reviewer can still let those pupils' consent decide.

The threshold and margin are chosen in docs/calibration.md.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from workers.engine.types import Candidates, GalleryEntry, MatchStatus

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

ENCODING_DIM = 128
MatchResult = tuple[MatchStatus, str | None, float | None]


class Decision(NamedTuple):
    """``match``'s result plus ``candidates``: for a face that is not matched, every
    pupil within threshold + margin, as (pupil_id, distance) nearest first; () for a
    matched face. Never an encoding."""

    status: MatchStatus
    pupil_id: str | None
    distance: float | None
    candidates: Candidates

# Upper bound on the temporary (queries x templates x 128) float64 difference array.
_MAX_CHUNK_BYTES = 32 * 1024 * 1024


class Gallery:
    """Immutable set of templates, grouped by pupil. ``len()`` is the number of templates."""

    __slots__ = ("_pupil_ids", "_starts", "_templates")

    def __init__(self, templates: FloatArray, pupil_ids: tuple[str, ...], starts: IntArray) -> None:
        # Use from_entries; this trusts its arguments: templates sorted by pupil,
        # starts[i] = first row of pupil_ids[i].
        self._templates = templates
        self._pupil_ids = pupil_ids
        self._starts = starts
        self._templates.flags.writeable = False
        self._starts.flags.writeable = False

    @classmethod
    def from_entries(cls, entries: Sequence[GalleryEntry]) -> Gallery:
        by_pupil: dict[str, list[FloatArray]] = {}
        for entry in entries:
            enc = np.asarray(entry.encoding, dtype=np.float64)
            if enc.shape != (ENCODING_DIM,):
                raise ValueError(
                    f"template for pupil {entry.pupil_id!r} has shape {enc.shape}, "
                    f"expected ({ENCODING_DIM},)"
                )
            if not np.all(np.isfinite(enc)):
                raise ValueError(f"template for pupil {entry.pupil_id!r} is not finite")
            by_pupil.setdefault(entry.pupil_id, []).append(enc)
        pupil_ids = tuple(sorted(by_pupil))
        rows: list[FloatArray] = []
        starts: list[int] = []
        for pid in pupil_ids:
            starts.append(len(rows))
            rows.extend(by_pupil[pid])
        templates = (
            np.array(rows, dtype=np.float64) if rows else np.empty((0, ENCODING_DIM), np.float64)
        )
        return cls(templates, pupil_ids, np.array(starts, dtype=np.intp))

    def __len__(self) -> int:
        return int(self._templates.shape[0])

    @property
    def pupil_ids(self) -> tuple[str, ...]:
        return self._pupil_ids

    def __repr__(self) -> str:
        return f"Gallery(pupils={len(self._pupil_ids)}, templates={len(self)})"

    def distances(self, encodings: FloatArray) -> FloatArray:
        """(n, pupils) distance of each query to each pupil's nearest template, columns in
        ``pupil_ids`` order. Requires a non-empty gallery and finite (n, 128) queries."""
        n = encodings.shape[0]
        per_pupil = np.empty((n, len(self._pupil_ids)), dtype=np.float64)
        chunk = max(1, _MAX_CHUNK_BYTES // max(1, len(self) * ENCODING_DIM * 8))
        for lo in range(0, n, chunk):
            q = encodings[lo : lo + chunk]
            diff = q[:, None, :] - self._templates[None, :, :]
            # Summing along the last axis row by row makes each query's distances
            # independent of how many queries share the batch.
            dist = np.sqrt(np.square(diff).sum(axis=2))
            per_pupil[lo : lo + chunk] = np.minimum.reduceat(dist, self._starts, axis=1)
        return per_pupil

    def nearest(self, encodings: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
        """Per query: (d1, d2, index of the nearest pupil). d2 is inf with fewer than two
        pupils. Requires a non-empty gallery and finite (n, 128) queries."""
        return _nearest(self.distances(encodings))

    def match(
        self, encodings: npt.ArrayLike, *, threshold: float, margin: float
    ) -> list[MatchResult]:
        return [
            (d.status, d.pupil_id, d.distance)
            for d in self.decide(encodings, threshold=threshold, margin=margin)
        ]

    def decide(
        self, encodings: npt.ArrayLike, *, threshold: float, margin: float
    ) -> list[Decision]:
        """The decision rule of the module docstring, one Decision per query row."""
        if not threshold > 0:
            raise ValueError("threshold must be positive")
        if not margin >= 0:
            raise ValueError("margin must be non-negative")
        queries = np.asarray(encodings, dtype=np.float64)
        if queries.ndim == 1 and queries.shape[0] == ENCODING_DIM:
            queries = queries[None, :]
        if queries.size == 0:
            return []
        if queries.ndim != 2 or queries.shape[1] != ENCODING_DIM:
            raise ValueError(f"encodings must have shape (n, {ENCODING_DIM}), got {queries.shape}")
        n = queries.shape[0]
        if len(self) == 0:
            return [Decision("unknown", None, None, ())] * n
        finite = np.all(np.isfinite(queries), axis=1)
        results = [Decision("uncertain", None, None, ())] * n
        if not finite.any():
            return results
        idx = np.flatnonzero(finite)
        per_pupil = self.distances(queries[idx])
        d1, d2, best = _nearest(per_pupil)
        reach = threshold + margin
        for k, i in enumerate(idx):
            dist = float(d1[k])
            if dist <= threshold and float(d2[k]) - dist >= margin:
                results[i] = Decision("matched", self._pupil_ids[int(best[k])], dist, ())
                continue
            near = np.flatnonzero(per_pupil[k] <= reach)
            candidates = tuple(
                sorted(
                    ((self._pupil_ids[int(j)], float(per_pupil[k, j])) for j in near),
                    key=lambda c: (c[1], c[0]),
                )
            )
            status: MatchStatus = "unknown" if dist > threshold else "uncertain"
            results[i] = Decision(status, None, dist, candidates)
        return results


def _nearest(per_pupil: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    n = per_pupil.shape[0]
    best = np.argmin(per_pupil, axis=1)
    d1 = per_pupil[np.arange(n), best]
    # With one pupil there is no second identity: d2 = inf.
    second = np.partition(per_pupil, 1, axis=1)[:, 1] if per_pupil.shape[1] > 1 else None
    d2 = np.full(n, np.inf) if second is None else second
    return d1, d2, best


class GalleryCache:
    """Per-process cache of one Gallery per organisation.

    ``version`` is the organisation's gallery version from the database, which is bumped
    on every consent or template change; callers must read it at the start of each task.
    A cached gallery is reused only for exactly the same version, so a withdrawal of
    consent takes effect on the next task that reads the bumped version.
    """

    def __init__(self, max_orgs: int = 64) -> None:
        if max_orgs < 1:
            raise ValueError("max_orgs must be at least 1")
        self._max_orgs = max_orgs
        self._entries: OrderedDict[str, tuple[int, Gallery]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, org_id: str, version: int, load: Callable[[], Sequence[GalleryEntry]]) -> Gallery:
        with self._lock:
            cached = self._entries.get(org_id)
            if cached is not None and cached[0] == version:
                self._entries.move_to_end(org_id)
                return cached[1]
        # Loaded outside the lock: a slow database read must not block other organisations.
        gallery = Gallery.from_entries(load())
        with self._lock:
            current = self._entries.get(org_id)
            # Never replace a newer version with an older one loaded by a slower caller.
            if current is None or current[0] <= version:
                self._entries[org_id] = (version, gallery)
                self._entries.move_to_end(org_id)
                while len(self._entries) > self._max_orgs:
                    self._entries.popitem(last=False)
        return gallery

    def invalidate(self, org_id: str | None = None) -> None:
        with self._lock:
            if org_id is None:
                self._entries.clear()
            else:
                self._entries.pop(org_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
