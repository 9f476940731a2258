"""Issue 9, video review by person, in a real browser against a real `consentgate serve`:
a teacher uploads the Hamilton clip (9 s, every frame screened, ~1,300 face rows in
~120 tracks), and the senior leader's review page shows one card per person (track),
not one per face per frame, fits a phone without sideways scrolling, and plays a clean
preview from where a person first appears. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.review.support import enrol
from tests.support import wait_screened
from tests.web.a11y import check_both_sizes
from tests.web.browser import Server, shot, sign_in

pytestmark = pytest.mark.faces

CLIP = "video/short_hamilton_clip.mp4"
# Every frame of the clip is screened; the first upload also loads the face models.
SCREENED_S = 600
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}
# "Not tens of thousands of pixels": the page of ~120 people, on a phone.
MAX_PHONE_HEIGHT = 12_000


def _page_size(page: Page) -> dict[str, int]:
    size: dict[str, int] = page.evaluate(
        "({width: document.documentElement.scrollWidth, "
        "height: document.documentElement.scrollHeight, viewport: window.innerWidth})")
    return size


def _thumbnails_loaded(page: Page) -> int:
    """Every card's crops load (also those folded away): one decoding pass of the video,
    not one per crop. Returns how many there are."""
    page.evaluate("document.querySelectorAll('.strip img').forEach(i => i.loading = 'eager')")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.strip img')].every("
        "i => i.complete && i.naturalWidth > 0)", timeout=120_000)
    count: int = page.locator(".strip img").count()
    return count


def test_a_video_is_reviewed_one_card_per_person(
    server: Server, browser: Browser, faces: Path
) -> None:
    server.org("stage-school")
    slt_api = server.api("stage-school", "slt", "Ms Reyes (Head)")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        enrol(http, slt_api, faces, {"lin_manuel_miranda": "granted"})

    # A teacher uploads the clip with the file picker.
    teacher = sign_in(browser, server, server.key("stage-school", "staff", "Mr Burr"))
    teacher.get_by_label("Event").fill("Summer musical")
    teacher.get_by_label("What they are for").select_option("publicity")
    teacher.locator("#files").set_input_files(faces / CLIP)
    row = teacher.locator("#queue li.file").filter(has_text="short_hamilton_clip.mp4")
    expect(row.locator("progress")).to_have_attribute("value", "100", timeout=60_000)
    expect(row).to_have_attribute("data-media", re.compile(r"^[0-9a-f-]{36}$"))
    media_id = row.get_attribute("data-media") or ""
    with httpx.Client(base_url=server.base, timeout=120) as http:
        body = wait_screened(http, slt_api, media_id, timeout=SCREENED_S)
        assert body["status"] == "needs_review", body
        review: dict[str, Any] = http.get(f"/api/v1/review/{media_id}", headers=slt_api).json()
    tracks = review["tracks"]
    faces_rows = review["faces"]
    assert len(faces_rows) > len(tracks) > 10, (len(faces_rows), len(tracks))
    assert len({t["track"] for t in tracks}) == len(tracks)
    assert sorted(f for t in tracks for f in t["face_ids"]) == sorted(f["id"] for f in faces_rows)
    for t in tracks:
        assert 1 <= len(t["thumbnail_urls"]) <= 3
        assert t["first_frame"] <= t["last_frame"]
        assert t["representative_face_id"] in t["face_ids"]
    assert review["fps"] and review["fps"] > 20
    assert review["preview_url"] == f"/api/v1/media/{media_id}/clip.webm"

    # The senior leader's queue counts people, not face rows.
    head = sign_in(browser, server, server.key("stage-school", "slt", "Ms Reyes (Head)"))
    expect(head.locator("li.queue-item").filter(has_text="Summer musical")).to_contain_text(
        f"{len(tracks)} people")
    # The review page on a phone.
    head.set_viewport_size(PHONE)
    head.goto(f"/review/{media_id}")
    expect(head.get_by_role("heading", name=re.compile("short_hamilton_clip"))).to_be_visible()
    cards = head.locator("li.track")
    expect(cards).to_have_count(len(tracks))
    # No card per face per frame.
    expect(head.locator("li.face")).to_have_count(0)
    assert head.locator("li.track[data-track]").evaluate_all(
        "cs => new Set(cs.map(c => c.dataset.track)).size") == len(tracks)
    first = cards.first
    expect(first.locator("[data-role=time]")).to_have_text(re.compile("^\\d+:\\d\\d\\.\\d\u2013\\d+:\\d\\d\\.\\d$"))
    # A person who could not be identified can be cleared from their card: one box per
    # track, sending the track's representative face.
    unresolved = [t for t in tracks if t["status"] in ("unknown", "uncertain")]
    boxes = head.locator("input[data-role=clear-track]")
    expect(boxes).to_have_count(len(unresolved))
    assert sorted(boxes.evaluate_all("bs => bs.map(b => b.value)")) == sorted(
        t["representative_face_id"] for t in unresolved)
    assert boxes.evaluate_all("bs => bs.every(b => b.form && b.form.id === 'approve-form')")
    started = time.monotonic()
    crops = _thumbnails_loaded(head)
    print(f"{crops} thumbnails loaded in {time.monotonic() - started:.1f} s")
    assert crops == sum(len(t["thumbnail_urls"]) for t in tracks)
    phone = _page_size(head)
    assert phone["width"] <= PHONE["width"], phone
    assert phone["height"] < MAX_PHONE_HEIGHT, phone
    head.evaluate("window.scrollTo(0, 0)")
    shot(head, "10-slt-video-review-phone")
    print(f"phone page: {phone}, cards: {len(tracks)}, face rows: {len(faces_rows)}")

    # "Play from" jumps the one player to where the person first appears.
    later = next(i for i, t in enumerate(tracks) if t["start_seconds"] and t["start_seconds"] > 1)
    card = head.locator(f"li.track[data-face='{tracks[later]['representative_face_id']}']")
    if not card.is_visible():
        head.locator("#brief-people summary").click()
    button = card.locator("[data-play-from]")
    expect(button).to_contain_text("Play from")
    button.click()
    player = head.locator("video#player")
    head.wait_for_function(
        "([v, t]) => v.readyState >= 2 && Math.abs(v.currentTime - t) < 0.6",
        arg=[player.element_handle(), tracks[later]["start_seconds"]], timeout=120_000)
    expect(card).to_have_class(re.compile(r"\bplaying\b"))
    shot(head, "11-slt-video-review-phone-playing")

    # The preview is a clean re-encode (WebM), private, and seekable by byte ranges.
    with httpx.Client(base_url=server.base, timeout=120) as http:
        clip = http.get(review["preview_url"], headers=slt_api)
        assert clip.status_code == 200
        assert clip.headers["content-type"] == "video/webm"
        assert clip.headers["cache-control"] == "private, no-store"
        assert clip.content[:4] == b"\x1a\x45\xdf\xa3"  # EBML (Matroska/WebM), not the MP4
        part = http.get(review["preview_url"], headers={**slt_api, "Range": "bytes=0-99"})
        assert part.status_code == 206
        assert part.content == clip.content[:100]

    # The same page on a laptop: the player beside the people.
    head.set_viewport_size(LAPTOP)
    head.goto(f"/review/{media_id}")
    expect(head.locator("li.track")).to_have_count(len(tracks))
    laptop = _page_size(head)
    assert laptop["width"] <= LAPTOP["width"], laptop
    _thumbnails_loaded(head)
    head.evaluate("window.scrollTo(0, 0)")
    shot(head, "12-slt-video-review-laptop")
    check_both_sizes(head, "video review")
    print(f"laptop page: {laptop}")
