"""Open-set matching and the gallery cache, on synthetic encodings (no images, no models)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from workers.engine.match import Gallery, GalleryCache
from workers.engine.types import GalleryEntry

DIM = 128
T = 0.5
M = 0.1


def vec(*pairs: tuple[int, float]) -> np.ndarray:
    """A 128-d vector that is zero except at the given (index, value) pairs."""
    v = np.zeros(DIM)
    for i, x in pairs:
        v[i] = x
    return v


def entry(pupil: str, *pairs: tuple[int, float]) -> GalleryEntry:
    return GalleryEntry(pupil, vec(*pairs))


def test_exactly_at_threshold_matches_and_just_beyond_is_unknown() -> None:
    gallery = Gallery.from_entries([entry("ann")])
    # Distances 0.5 and 0.5 + 2**-20 are exact in binary floating point.
    at, beyond = vec((0, 0.5)), vec((0, 0.5 + 2**-20))
    assert gallery.match(np.stack([at, beyond]), threshold=T, margin=M) == [
        ("matched", "ann", 0.5),
        ("unknown", None, 0.5 + 2**-20),
    ]


def test_second_identity_within_margin_is_uncertain_and_names_nobody() -> None:
    gallery = Gallery.from_entries([entry("ann"), entry("bob", (1, 1.0))])
    # d(ann) = 0.3; d(bob) = sqrt(0.3**2 + 1) ~ 1.04: clear.
    clear = vec((0, 0.3))
    # Equidistant from both (0.5 each), inside the threshold: too close to call.
    middle = vec((1, 0.5))
    status, pupil, distance = gallery.match(np.stack([clear, middle]), threshold=0.6, margin=M)[1]
    assert (status, pupil) == ("uncertain", None)
    assert distance == pytest.approx(0.5)
    assert gallery.match(clear, threshold=0.6, margin=M)[0][:2] == ("matched", "ann")


def test_margin_boundary() -> None:
    gallery = Gallery.from_entries([entry("ann"), entry("bob", (0, 1.0))])
    # On the line between them: d(ann) = x, d(bob) = 1 - x; gap = 1 - 2x.
    gap_exact = vec((0, 0.375))  # gap 0.25
    gap_short = vec((0, 0.4375))  # gap 0.125
    results = gallery.match(np.stack([gap_exact, gap_short]), threshold=T, margin=0.25)
    assert results[0] == ("matched", "ann", 0.375)
    assert results[1] == ("uncertain", None, 0.4375)


def test_second_identity_beyond_threshold_but_within_margin_is_still_uncertain() -> None:
    # d1 = 0.45 (inside), d2 = 0.52 (outside the threshold, but only 0.07 further).
    gallery = Gallery.from_entries([entry("ann"), entry("bob", (0, 0.97))])
    status, pupil, _ = gallery.match(vec((0, 0.45)), threshold=T, margin=M)[0]
    assert (status, pupil) == ("uncertain", None)


def test_several_templates_per_pupil_use_the_nearest() -> None:
    gallery = Gallery.from_entries(
        [
            entry("ann", (0, 2.0)),  # far
            entry("bob", (1, 1.0)),
            entry("ann", (0, 0.25)),  # near
            entry("bob", (1, 2.0)),
        ]
    )
    assert len(gallery) == 4
    assert gallery.pupil_ids == ("ann", "bob")
    status, pupil, distance = gallery.match(vec(), threshold=T, margin=M)[0]
    assert (status, pupil, distance) == ("matched", "ann", 0.25)


def test_templates_of_one_pupil_never_count_as_a_second_identity() -> None:
    # Two near-identical templates of the same pupil: d1 ~ d2 template-wise, but there
    # is only one identity, so the margin rule does not apply.
    gallery = Gallery.from_entries([entry("ann", (0, 0.1)), entry("ann", (0, 0.11))])
    assert gallery.match(vec(), threshold=T, margin=M)[0][:2] == ("matched", "ann")


def test_empty_gallery_is_unknown_without_distance() -> None:
    gallery = Gallery.from_entries([])
    assert len(gallery) == 0
    assert gallery.match(np.stack([vec(), vec((3, 1.0))]), threshold=T, margin=M) == [
        ("unknown", None, None),
        ("unknown", None, None),
    ]


def test_no_queries() -> None:
    gallery = Gallery.from_entries([entry("ann")])
    assert gallery.match(np.empty((0, DIM)), threshold=T, margin=M) == []


def test_non_finite_query_is_uncertain() -> None:
    gallery = Gallery.from_entries([entry("ann")])
    bad = vec()
    bad[5] = np.nan
    assert gallery.match(np.stack([bad, vec((0, 0.1))]), threshold=T, margin=M) == [
        ("uncertain", None, None),
        ("matched", "ann", 0.1),
    ]


def test_bad_templates_and_queries_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        Gallery.from_entries([GalleryEntry("ann", np.zeros(127))])
    with pytest.raises(ValueError, match="finite"):
        Gallery.from_entries([GalleryEntry("ann", np.full(DIM, np.inf))])
    gallery = Gallery.from_entries([entry("ann")])
    with pytest.raises(ValueError, match="shape"):
        gallery.match(np.zeros((2, 64)), threshold=T, margin=M)
    with pytest.raises(ValueError, match="threshold"):
        gallery.match(vec(), threshold=0.0, margin=M)


def test_gallery_is_immutable() -> None:
    source = vec((0, 0.2))
    gallery = Gallery.from_entries([GalleryEntry("ann", source)])
    source[0] = 5.0  # the caller's array is copied, not aliased
    assert gallery.match(vec(), threshold=T, margin=M)[0] == ("matched", "ann", 0.2)
    with pytest.raises(AttributeError):
        gallery.extra = 1  # type: ignore[attr-defined]


def test_batch_gives_the_same_answers_as_one_by_one() -> None:
    rng = np.random.default_rng(7)
    pupils = [f"p{i:03d}" for i in range(60)]
    centres = rng.normal(size=(len(pupils), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    entries = [
        GalleryEntry(p, c + rng.normal(scale=0.02, size=DIM))
        for p, c in zip(pupils, centres, strict=True)
        for _ in range(3)
    ]
    gallery = Gallery.from_entries(entries)
    # Queries near a pupil, between two pupils, and far from everyone.
    near = centres[:20] + rng.normal(scale=0.025, size=(20, DIM))
    between = (centres[20:30] + centres[30:40]) / 2
    far = rng.normal(size=(10, DIM)) * 3
    queries = np.concatenate([near, between, far])
    # Threshold wide enough that the "between" queries hit the margin rule.
    batch = gallery.match(queries, threshold=0.8, margin=M)
    single = [gallery.match(q[None, :], threshold=0.8, margin=M)[0] for q in queries]
    assert batch == single
    statuses = {s for s, _, _ in batch}
    assert statuses == {"matched", "uncertain", "unknown"}
    assert [p for _, p, _ in batch[:20]] == pupils[:20]


def _loader(entries: list[GalleryEntry], calls: list[int]) -> Callable[[], list[GalleryEntry]]:
    def load() -> list[GalleryEntry]:
        calls.append(1)
        return entries

    return load


def test_cache_reuses_same_version_and_reloads_on_change() -> None:
    cache = GalleryCache()
    calls: list[int] = []
    first = cache.get("org-a", 1, _loader([entry("ann")], calls))
    again = cache.get("org-a", 1, _loader([entry("bob")], calls))
    assert again is first
    assert len(calls) == 1
    # Consent withdrawn: the DB bumped the version, the new gallery lacks ann.
    newer = cache.get("org-a", 2, _loader([entry("bob")], calls))
    assert newer is not first
    assert newer.pupil_ids == ("bob",)
    assert len(calls) == 2
    # Another organisation is independent.
    other = cache.get("org-b", 1, _loader([], calls))
    assert len(other) == 0
    assert cache.get("org-a", 2, _loader([], calls)) is newer
    assert len(calls) == 3


def test_cache_invalidate_one_or_all() -> None:
    cache = GalleryCache()
    calls: list[int] = []
    a = cache.get("org-a", 1, _loader([entry("ann")], calls))
    b = cache.get("org-b", 1, _loader([entry("bob")], calls))
    cache.invalidate("org-a")
    assert cache.get("org-a", 1, _loader([entry("ann")], calls)) is not a
    assert cache.get("org-b", 1, _loader([], calls)) is b
    assert len(calls) == 3
    cache.invalidate()
    assert cache.get("org-b", 1, _loader([entry("bob")], calls)) is not b
    assert len(calls) == 4


def test_cache_never_replaces_a_newer_version_with_an_older_one() -> None:
    cache = GalleryCache()
    calls: list[int] = []
    newer = cache.get("org", 5, _loader([entry("bob")], calls))
    # A slow task that read version 4 before the bump still gets a gallery...
    older = cache.get("org", 4, _loader([entry("ann")], calls))
    assert older.pupil_ids == ("ann",)
    # ...but the cache keeps version 5.
    assert cache.get("org", 5, _loader([], calls)) is newer
    assert len(calls) == 2


def test_cache_is_bounded() -> None:
    cache = GalleryCache(max_orgs=2)
    calls: list[int] = []
    for org in ("a", "b", "c"):
        cache.get(org, 1, _loader([], calls))
    assert len(cache) == 2
    cache.get("a", 1, _loader([], calls))  # evicted, reloads
    assert len(calls) == 4


def test_cache_is_thread_safe() -> None:
    cache = GalleryCache()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for v in range(20):
                g = cache.get(f"org{i % 3}", v, lambda: [entry("ann")])
                assert g.pupil_ids == ("ann",)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ----------------------------------------------------------------------------- candidates


def test_too_close_to_call_lists_both_pupils_as_candidates_nearest_first() -> None:
    # ann at 0.3, bob at 0.35 (both within threshold, gap 0.05 < margin), cat at 1.0.
    gallery = Gallery.from_entries(
        [entry("ann"), entry("bob", (0, 0.65)), entry("cat", (0, 1.3))]
    )
    (decision,) = gallery.decide(vec((0, 0.3)), threshold=T, margin=M)
    assert (decision.status, decision.pupil_id) == ("uncertain", None)
    assert [pid for pid, _ in decision.candidates] == ["ann", "bob"]
    assert [d for _, d in decision.candidates] == pytest.approx([0.3, 0.35])
    assert decision.distance == pytest.approx(0.3)


def test_unknown_face_lists_pupils_just_beyond_the_threshold() -> None:
    # Nobody within 0.5, but ann is within 0.5 + 0.1; bob is not.
    gallery = Gallery.from_entries([entry("ann"), entry("bob", (0, 1.25))])
    (decision,) = gallery.decide(vec((0, -0.55)), threshold=T, margin=M)
    assert decision.status == "unknown" and decision.pupil_id is None
    assert [pid for pid, _ in decision.candidates] == ["ann"]
    (far,) = gallery.decide(vec((1, 2.0)), threshold=T, margin=M)
    assert far.status == "unknown" and far.candidates == ()


def test_candidates_use_each_pupils_nearest_template_and_hold_no_encoding() -> None:
    gallery = Gallery.from_entries(
        [entry("ann", (0, 2.0)), entry("ann", (0, 0.1)), entry("bob", (0, 0.2))]
    )
    (decision,) = gallery.decide(vec((0, 0.15)), threshold=T, margin=M)
    assert decision.status == "uncertain"
    assert decision.candidates == (("ann", pytest.approx(0.05)), ("bob", pytest.approx(0.05)))
    for pid, distance in decision.candidates:
        assert isinstance(pid, str) and isinstance(distance, float)


def test_matched_faces_have_no_candidates_and_match_agrees_with_decide() -> None:
    gallery = Gallery.from_entries([entry("ann"), entry("bob", (1, 1.0))])
    queries = np.stack([vec((0, 0.3)), vec((1, 0.5)), vec((2, 3.0))])
    decisions = gallery.decide(queries, threshold=0.6, margin=M)
    assert decisions[0].status == "matched" and decisions[0].candidates == ()
    assert gallery.match(queries, threshold=0.6, margin=M) == [d[:3] for d in decisions]


def test_empty_gallery_and_non_finite_queries_have_no_candidates() -> None:
    assert Gallery.from_entries([]).decide(vec(), threshold=T, margin=M)[0].candidates == ()
    gallery = Gallery.from_entries([entry("ann")])
    bad = vec((0, float("nan")))
    assert gallery.decide(bad, threshold=T, margin=M)[0] == ("uncertain", None, None, ())
