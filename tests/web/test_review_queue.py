"""The review work queue, naming a face, and big actions that warn first and report after,
in Debian's Chromium against a real `consentgate serve`. Every page visited is checked at
1366x768 and 390x844: nothing wider than the window, and no serious or critical axe-core
violation. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.review.support import enrol
from tests.support import wait_screened
from tests.web.a11y import LAPTOP, PHONE, check_both_sizes
from tests.web.browser import Server, shot, sign_in

CHECKED_S = 180_000
# A review item of a photo with four faces, on a 390 px phone: it was about 8,000 px;
# 4,820 px with three places, about 5,140 px with the five places a "publicity" upload is
# for and capture consent on each face card (reasons beyond the first folded away).
MAX_PHONE_PX = 5500


def _scene(n: int) -> bytes:
    """A face-free picture, different for every n (same-bytes uploads would be one file)."""
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w + n * 17) % 256, (y * 255 // h + n * 29) % 256,
                    ((x + y) * 127 // (w + h) + n * 7) % 256], axis=-1)
    img[60 + n % 5 * 10:140, 80:200 + n] = (30 + n * 9 % 200, 90, 160)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _upload(http: httpx.Client, staff: dict[str, str], name: str, data: bytes, event: str,
            purpose: str = "publicity") -> str:
    r = http.post("/api/v1/media", headers=staff,
                  data={"event": event, "purpose": purpose, "device": "school"},
                  files={"file": (name, data, "image/jpeg")})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


def _pages_fit(page: Page, label: str) -> None:
    check_both_sizes(page, label)


def test_filter_bulk_decide_an_event_and_the_queue_empties(
    server: Server, browser: Browser
) -> None:
    server.org("queue-school")
    slt = server.api("queue-school", "slt", "Mrs Khan (Head)")
    staff = server.api("queue-school", "staff", "Mr Jones")
    staff2 = server.api("queue-school", "staff", "Ms Patel")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        sports = [_upload(http, staff, f"sports_{n:02d}.jpg", _scene(n), "Sports day")
                  for n in range(12)]
        choir = [_upload(http, staff2, f"choir_{n}.jpg", _scene(100 + n), "Choir concert",
                         purpose="curriculum") for n in range(2)]
        for media_id in sports + choir:
            wait_screened(http, slt, media_id)

    head = sign_in(browser, server, server.key("queue-school", "slt", "Mrs Khan (Head)"))
    expect(head).to_have_url(re.compile(r"/review$"))
    expect(head.locator("#waiting li.queue-item")).to_have_count(14)
    # Cards say which file, who uploaded it, and one state per place it is for.
    card = head.locator("li.queue-item").filter(has_text="sports_03.jpg")
    expect(card).to_contain_text("Mr Jones")
    expect(card.locator("img")).to_have_count(1)
    expect(card.locator(".cs[data-channel=website]")).to_contain_text("Blocked")
    choir_card = head.locator("li.queue-item").filter(has_text="choir_0.jpg")
    expect(choir_card.locator(".cs")).to_have_count(2)  # curriculum: newsletter, display
    expect(choir_card.locator(".cs[data-channel=newsletter]")).to_contain_text("Blocked")
    _pages_fit(head, "review queue")
    shot(head, "20-review-queue")

    # Filter: the event, then the uploader, then a search.
    head.get_by_label("Event").select_option("Sports day")
    head.get_by_role("button", name="Show").click()
    expect(head.locator("li.queue-item")).to_have_count(12)
    expect(head.locator("#result-count")).to_contain_text("12 items")
    head.get_by_label("Uploaded by").select_option("Ms Patel")
    head.get_by_role("button", name="Show").click()
    expect(head.locator("li.queue-item")).to_have_count(0)
    head.goto("/review?q=sports_1")
    expect(head.locator("li.queue-item")).to_have_count(2)  # sports_10 and sports_11
    head.goto("/review?reason=slt_approval_required&channel=website")
    expect(head.locator("li.queue-item")).to_have_count(12)  # choir is not for the website
    head.goto("/review?event=Sports+day")

    # One decision for the whole event, shown first as a summary.
    head.get_by_label("Approve", exact=True).check()
    head.get_by_role("button", name="Decide all of “Sports day”…").click()
    expect(head.get_by_role("heading", level=1)).to_have_text("Approve: 12 photos")
    expect(head.locator("table.summary tbody tr")).to_have_count(12)
    expect(head.locator("table.summary")).to_contain_text("School website")
    _pages_fit(head, "bulk summary")
    shot(head, "21-bulk-summary")
    head.get_by_label(re.compile("^Why")).fill("Sports day photos, no faces in any of them.")
    head.get_by_role("button", name="Approve 12 photos").click()
    expect(head).to_have_url(re.compile(r"/review\?view=decided$"))
    notice = head.locator("#notice")
    expect(notice).to_contain_text("Approved: 12 photos.")
    expect(notice).to_contain_text("sports_07.jpg (Sports day)")
    head.reload()
    expect(head.locator("#notice")).to_contain_text("Approved: 12 photos.")
    expect(head.locator("#decided li.queue-item")).to_have_count(12)
    expect(head.locator("li.queue-item").filter(has_text="sports_05.jpg")
           .locator(".cs[data-channel=website]")).to_contain_text("Allowed")
    shot(head, "22-decided-view")

    # The two choir photos: ticked and rejected, confirmed on the summary.
    head.goto("/review")
    expect(head.locator("#waiting li.queue-item")).to_have_count(2)
    for box in head.locator("li.queue-item input[type=checkbox]").all():
        box.check()
    head.get_by_label("Reject and delete").check()
    head.get_by_role("button", name="Decide the ticked ones…").click()
    expect(head.locator("#bulk-summary")).to_contain_text("deleted for good")
    expect(head.locator("table.summary tbody tr")).to_have_count(2)
    head.get_by_label(re.compile("^Why")).fill("Blurred and dark; not worth keeping.")
    head.get_by_role("button", name="Reject and delete 2 photos").click()
    expect(head.locator("#notice")).to_contain_text("Rejected and deleted: 2 photos.")
    head.goto("/review")
    expect(head.locator("#empty")).to_have_text("Nothing is waiting for a decision.")
    expect(head.locator("nav.tabs")).to_contain_text("Waiting for a decision 0")
    _pages_fit(head, "empty queue")
    shot(head, "23-queue-empty")
    head.goto("/audit")
    expect(head.locator("tr[data-action='review.approved']")).to_have_count(12)
    expect(head.locator("tr[data-action='review.approved']").first).to_contain_text(
        "School website")
    assert "website" not in head.locator(
        "tr[data-action='review.approved'] .details").first.inner_text().replace(
        "School website", "")
    _pages_fit(head, "audit log")


def test_name_a_face_then_that_pupils_consent_decides(
    server: Server, browser: Browser, faces: Path
) -> None:
    server.org("name-school", "arts-service")
    slt = server.api("name-school", "slt", "Mrs Khan (Head)")
    staff = server.api("name-school", "staff", "Mr Jones")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        enrol(http, slt, faces, {"kit_harington": "granted"})
        r = http.post("/api/v1/pupils", headers=slt, json={
            "external_id": "UPN0100", "given_name": "Rose", "family_name": "Leslie",
            "year_group": "Year 5"})
        assert r.status_code == 201, r.text
        rose_id = r.json()["id"]
        r = http.post(f"/api/v1/pupils/{rose_id}/biometric-consent", headers=slt,
                      json={"status": "granted", "by": "parent", "evidence_ref": "form-r"})
        assert r.status_code == 201, r.text
        media_id = _upload(http, staff, "fair_kit_rose.jpg",
                           (faces / "events" / "kit_with_rose.jpg").read_bytes(), "Fair")
        visitor = _upload(http, staff, "visitor.jpg",
                          (faces / "events" / "obama1.jpg").read_bytes(), "Fair")
        wait_screened(http, slt, media_id)
        wait_screened(http, slt, visitor)

    head = sign_in(browser, server, server.key("name-school", "slt", "Mrs Khan (Head)"))
    head.goto(f"/review/{media_id}")
    website = head.locator("table.where tr[data-channel=website]")
    expect(website).to_contain_text("not recognised")
    _pages_fit(head, "review item")
    shot(head, "24-review-item-unknown")
    face = head.locator("li.face[data-status=unknown]")
    expect(face).to_have_count(1)
    face.get_by_role("link", name=re.compile("Name this pupil")).click()
    expect(head.get_by_role("heading", level=1)).to_contain_text("Who is face")
    # Kit is enrolled under face-matching consent, so learning the face is offered, but
    # never ticked for SLT; Rose has consent but no enrolment photo, and it says so.
    learn = head.get_by_label(re.compile("Also use this face to recognise"))
    expect(learn).to_be_visible()
    expect(learn).not_to_be_checked()
    expect(head.locator("#name-learn-hint")).to_contain_text(
        "Not offered for Rose Leslie: Rose Leslie has no enrolment photo yet")
    _pages_fit(head, "name a face, learning offered")
    head.get_by_label("Search by name or reference").fill("rose")
    head.get_by_role("button", name="Search").click()
    expect(head.locator("#name-form label.inline")).to_have_count(1)
    expect(head.get_by_label(re.compile("Also use this face to recognise"))).to_have_count(0)
    expect(head.locator("#name-learn-none")).to_contain_text(
        "This face cannot be used to recognise Rose Leslie in future")
    _pages_fit(head, "name a face")
    head.get_by_label(re.compile("Rose Leslie")).check()
    head.get_by_label("How you know").fill("I teach Year 5; this is Rose Leslie.")
    head.get_by_role("button", name="This is the pupil").click()
    expect(head.locator("#notice")).to_contain_text("Named as Rose Leslie")
    rose = head.locator("li.face").filter(has_text="Rose Leslie")
    expect(rose).to_have_attribute("data-status", "unconsented")
    expect(website).to_contain_text("Rose Leslie: no consent recorded for School website")
    expect(website).not_to_contain_text("not recognised")
    head.reload()
    expect(head.locator("#notice")).to_contain_text("Named as Rose Leslie")
    shot(head, "25-review-item-named")
    # On a phone the page is a column of short cards: details fold away.
    head.set_viewport_size(PHONE)
    head.reload()
    tall = head.evaluate("document.documentElement.scrollHeight")
    print(f"review item on a phone: {tall} px tall")
    shot(head, "25b-review-item-phone")
    assert tall < MAX_PHONE_PX, tall
    head.set_viewport_size(LAPTOP)
    head.goto("/audit")
    named = head.locator("tr[data-action='review.face_identified']")
    expect(named).to_contain_text("Rose Leslie")
    expect(named).to_contain_text("Mrs Khan (Head)")

    # Over the API on the embedded (SQLite) server: naming with add_as_template where no
    # template can be learnt (Rose has no enrolment) names the face and refuses the
    # template with a code, each in its own write unit.
    with httpx.Client(base_url=server.base, timeout=120) as http:
        (vface,) = [f for f in http.get(f"/api/v1/review/{visitor}", headers=slt)
                    .json()["faces"] if f["status"] == "unknown"]
        r = http.post(f"/api/v1/media/{visitor}/faces/{vface['id']}/identify", headers=slt,
                      json={"pupil_id": rose_id, "add_as_template": True,
                            "justification": "Rose's aunt? No: it is Rose, in costume."})
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "in_force"
        assert r.json()["template"]["added"] is False
        assert r.json()["template"]["code"] == "no_reference_template"
        again = http.get(f"/api/v1/review/{visitor}", headers=slt).json()["faces"]
        assert next(f for f in again if f["id"] == vface["id"])["pupil_id"] == rose_id


def test_withdrawal_lists_photos_first_reports_after_and_staff_see_published(
    server: Server, browser: Browser, faces: Path
) -> None:
    server.org("pub-school", "arts-service")
    slt = server.api("pub-school", "slt", "Mrs Khan (Head)")
    staff = server.api("pub-school", "staff", "Mr Jones")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        ids = enrol(http, slt, faces, {"kit_harington": "granted"})
        media_id = _upload(http, staff, "kit_concert.jpg",
                           (faces / "events" / "johnsnow_test1.jpg").read_bytes(), "Concert")
        wait_screened(http, slt, media_id)

    head = sign_in(browser, server, server.key("pub-school", "slt", "Mrs Khan (Head)"))
    head.goto(f"/review/{media_id}")
    website = head.locator("table.where tr[data-channel=website]")
    expect(website).to_contain_text("Allowed")
    website.get_by_role("button", name=re.compile("^Publish")).click()
    expect(head.locator(".notice.ok")).to_have_text("Published.")
    expect(website).to_contain_text("Published")

    # The teacher who uploaded it sees "Published".
    teacher = sign_in(browser, server, server.key("pub-school", "staff", "Mr Jones"))
    row = teacher.locator("li.file").filter(has_text="kit_concert.jpg")
    expect(row.locator("[data-role=state]")).to_have_text("Published")
    expect(row.locator("[data-role=summary]")).to_contain_text("Published on: School website")
    _pages_fit(teacher, "upload page")
    shot(teacher, "26-teacher-published")

    # Taken down from the page, and published again.
    head.goto(f"/review/{media_id}")
    website.get_by_role("button", name=re.compile("^Take down")).click()
    expect(head.locator("#notice")).to_contain_text("Taken down from School website.")
    expect(website).to_contain_text("Allowed")
    website.get_by_role("button", name=re.compile("^Publish")).click()
    expect(website).to_contain_text("Published")
    head.get_by_role("link", name="Published", exact=True).click()
    expect(head.locator("#published li.queue-item")).to_have_count(1)
    expect(head.locator("#published")).to_contain_text("kit_concert.jpg")
    _pages_fit(head, "published library")

    # Withdrawing consent says first which photo comes down, then what came down.
    head.goto(f"/register/{ids['kit_harington']}")
    _pages_fit(head, "pupil page")
    consent = head.locator("table.consent-now tr[data-channel=website]")
    consent.get_by_placeholder("where the form or letter is kept").fill("Email from dad, 4 May")
    consent.get_by_role("button", name="Withdraw").click()
    summary = head.locator("#withdraw-summary")
    expect(summary).to_contain_text("1 photo will be taken down from School website")
    expect(head.locator("#coming-down")).to_contain_text("kit_concert.jpg (Concert)")
    _pages_fit(head, "withdrawal confirmation")
    shot(head, "27-withdraw-confirm")
    head.get_by_role("button", name=re.compile("Withdraw consent and take them down")).click()
    notice = head.locator("#notice")
    expect(notice).to_contain_text("1 photo taken down.")
    expect(notice).to_contain_text("Taken down from School website: kit_concert.jpg (Concert)")
    head.reload()
    expect(head.locator("#notice")).to_contain_text("Taken down from School website")
    shot(head, "28-withdraw-report")
    head.goto("/published?channel=website")
    expect(head.locator("#none-published")).to_be_visible()
    teacher.reload()
    state = teacher.locator("li.file").filter(has_text="kit_concert.jpg").locator(
        "[data-role=state]")
    expect(state).to_have_text("Waiting for a senior leader")

    # Reject asks first, too.
    head.goto(f"/review/{media_id}")
    head.locator("#reject-box summary").click()
    reject = head.locator("#reject-form")
    reject.get_by_label("Why it should go").fill("Consent withdrawn; we will not use it.")
    reject.get_by_role("button", name="Reject and delete").click()
    expect(head.locator("#confirm-summary")).to_contain_text("deleted for good")
    _pages_fit(head, "reject confirmation")
    head.get_by_role("button", name="Yes, reject and delete").click()
    expect(head.locator(".notice.ok")).to_contain_text("Rejected")
    teacher.reload()
    row = teacher.locator("li.file").filter(has_text="kit_concert.jpg")
    expect(row.locator("[data-role=state]")).to_have_text("Rejected")
    expect(row.locator("[data-role=summary]")).to_contain_text("we will not use it")

    # The remaining pages: register, sign-in, the pipeline's page, an error page.
    head.goto("/register")
    _pages_fit(head, "register")
    teacher.goto("/review")
    expect(teacher.locator("main")).not_to_contain_text("roles")
    _pages_fit(teacher, "error page")
    publisher = sign_in(browser, server, server.key("pub-school", "publisher", "Website"))
    _pages_fit(publisher, "pipeline page")
    fresh = browser.new_context(base_url=server.base).new_page()
    fresh.goto("/signin")
    _pages_fit(fresh, "sign-in page")
