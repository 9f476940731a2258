"""The web pages in a real browser (Debian's Chromium, headless) against a real
`consentgate serve` started by the test: a teacher uploads a class photo, watches it
get checked, and a senior leader publishes it with the pupil without consent blurred.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.review.support import (
    assert_no_metadata,
    enrol,
    gallery,
    screen,
    size_of,
    tagged_photo,
)
from tests.web.a11y import check_both_sizes
from tests.web.browser import Server, drop_files, shot, sign_in

# Screening runs in the embedded worker; the first photo also loads the face models.
CHECKED_S = 180_000
WHY_BLUR = "Summer fair class photo for the website. Rose has no consent, so her face is blurred."


def test_class_photo_uploaded_checked_and_published_with_a_face_blurred(
    server: Server, browser: Browser, faces: Path, tmp_path: Path
) -> None:
    server.org("fair-school")
    slt_api = server.api("fair-school", "slt", "Mrs Khan (Head)")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        ids = enrol(http, slt_api, faces, {"kit_harington": "granted", "rose_leslie": None})
    photo = tagged_photo(faces / "events" / "kit_with_rose.jpg")

    # A teacher signs in and drags the class photo onto the upload page.
    teacher = sign_in(browser, server, server.key("fair-school", "staff", "Mr Jones"))
    expect(teacher).to_have_url(re.compile(r"/upload$"))
    teacher.get_by_label("Event").fill("Summer fair")
    teacher.get_by_label("What they are for").select_option("publicity")
    drop_files(teacher, "#drop", [("class_photo.jpg", photo, "image/jpeg")])
    row = teacher.locator("#queue li.file").filter(has_text="class_photo.jpg")
    expect(row).to_be_visible()
    expect(row.locator("progress")).to_have_attribute("value", "100", timeout=60_000)
    # Live status: it goes from waiting/checking to checked without a reload.
    state = row.locator("[data-role=state]")
    # Rose has no consent: never a green "Checked", one plain result instead.
    expect(state).to_have_text("Waiting for a senior leader", timeout=CHECKED_S)
    expect(row.locator("[data-role=summary]")).to_contain_text("senior leader")
    check_both_sizes(teacher, "upload page")
    shot(teacher, "01-teacher-upload-checked")

    # A senior leader opens the review queue: the photo is there, with its reasons.
    head = sign_in(browser, server, server.key("fair-school", "slt", "Mrs Khan (Head)"))
    expect(head).to_have_url(re.compile(r"/review$"))
    item = head.locator("#waiting li.queue-item").filter(has_text="Summer fair")
    expect(item).to_be_visible()
    expect(item.locator(".flag-no_consent")).to_contain_text("Rose Leslie")
    item.locator("summary").click()
    expect(item.locator(".reasons")).to_contain_text("Rose Leslie: no consent recorded")
    check_both_sizes(head, "review queue")
    shot(head, "02-slt-review-queue")

    item.get_by_role("link", name="Review").click()
    expect(head.get_by_role("heading", name=re.compile("class_photo.jpg"))).to_be_visible()
    expect(head.locator("main")).to_contain_text("Summer fair")
    faces_list = head.locator("li.face")
    rose = faces_list.filter(has_text="Rose Leslie")
    kit = faces_list.filter(has_text="Kit Harington")
    expect(rose).to_have_attribute("data-status", "unconsented")
    expect(kit).to_have_attribute("data-status", "consented")
    expect(rose.locator(".consents")).to_contain_text("not returned")
    # Boxes coloured by status are drawn over the photo, one per face.
    expect(head.locator("svg rect.box-unconsented")).to_have_count(1)
    expect(head.locator("svg rect.box-consented")).to_have_count(1)
    picture = head.locator(".overlay-wrap img")
    picture.scroll_into_view_if_needed()
    expect(picture).to_have_js_property("complete", True)  # loaded, not only present
    assert picture.evaluate("i => i.naturalWidth > 0")
    crops = head.locator("li.face img")
    for i in range(crops.count()):
        crops.nth(i).scroll_into_view_if_needed()
        expect(crops.nth(i)).to_have_js_property("complete", True)
        assert crops.nth(i).evaluate("i => i.naturalWidth") > 0
    website = head.locator("table.where tr[data-channel=website]")
    expect(website).to_contain_text("Blocked")
    check_both_sizes(head, "review item")
    shot(head, "03-slt-review-item")
    # The same page on a tablet held upright: one column, nothing cut off.
    head.set_viewport_size({"width": 810, "height": 1080})
    assert head.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(head, "03b-slt-review-item-tablet")
    head.set_viewport_size({"width": 1280, "height": 900})

    # Approve with redaction, and publish now.
    form = head.locator("#redact-form")
    # Purposes come from the policy's list now, not channel names: SLT tick the channel.
    form.get_by_label(re.compile("School website")).check()
    # The places the photo's purpose is for come ticked; each gets its own copy.
    ticked = form.locator("input[name=channels]:checked").count()
    assert ticked >= 1
    expect(form).to_contain_text("blurs face")
    form.get_by_label("Why this is fine to publish").fill(WHY_BLUR)
    form.get_by_role("button", name="Blur and approve").click()
    expect(head.locator(".notice.ok")).to_have_text("Published.")
    website = head.locator("table.where tr[data-channel=website]")
    expect(website).to_contain_text("Published (blurred)")
    link = website.get_by_role("link", name="blurred copy")
    expect(link).to_be_visible()
    shot(head, "04-slt-published-blurred")

    # The published copy: no EXIF/GPS/XMP/IPTC, upright, and the engine finds only Kit.
    url = link.get_attribute("href")
    assert url and url.startswith(server.base + "/public/")
    published = httpx.get(url, timeout=60)
    assert published.status_code == 200
    assert published.headers["content-type"] == "image/jpeg"
    assert_no_metadata(published.content)
    stored_w, stored_h = size_of(photo)
    assert size_of(published.content) == (stored_h, stored_w)
    found = screen(published.content, gallery(faces, ["kit_harington", "rose_leslie"]))
    assert [(f.status, f.pupil_id) for f in found] == [("matched", "kit_harington")], found
    (tmp_path / "published.jpg").write_bytes(published.content)

    # The decision and its reason are in the audit log.
    head.get_by_role("link", name="Audit log").click()
    decision = head.locator("tr[data-action='review.approved_blurred']")
    expect(decision).to_contain_text(WHY_BLUR)
    expect(decision).to_contain_text("Mrs Khan (Head)")
    expect(head.locator("tr[data-action='publication.created']")).to_have_count(ticked)
    shot(head, "05-slt-audit-log")
    assert ids


def test_register_second_slt_confirmation_and_reject_in_the_browser(
    server: Server, browser: Browser, faces: Path
) -> None:
    server.org("hill-school")
    head = sign_in(browser, server, server.key("hill-school", "slt", "Mr Hill (Head)"))

    # The consent register: add a pupil, record face-matching consent, an enrolment
    # photo, and consent for the website; then withdraw it.
    head.get_by_role("link", name="Consent register").click()
    head.get_by_label("UPN or school ID").fill("A123456789012")
    head.get_by_label("First name").fill("Kit")
    head.get_by_label("Last name").fill("Harington")
    head.get_by_label("Year group").fill("Year 4")
    head.get_by_role("button", name="Add pupil").click()
    expect(head.locator(".notice.ok")).to_have_text("Pupil added.")
    head.get_by_label("Evidence", exact=True).fill("Biometrics form, office file B4")
    head.get_by_role("button", name="Record").click()
    expect(head.locator(".notice.ok")).to_have_text("Face-matching consent recorded.")
    head.get_by_label("Add a photo").set_input_files(faces / "enrol" / "kit_harington" /
                                                    "kit_a.jpg")
    head.get_by_role("button", name="Add photo").click()
    expect(head.locator(".notice.ok")).to_have_text("Enrolment photo added.")
    expect(head.locator("ul.photos img")).to_have_count(1)
    assert head.locator("ul.photos img").evaluate("i => i.complete && i.naturalWidth > 0")
    row = head.locator("table.consent-now tr[data-channel=website]")
    row.get_by_placeholder("where the form or letter is kept").fill("Consent letter 2025/17")
    row.get_by_role("button", name="Grant").click()
    expect(head.locator(".notice.ok")).to_have_text("Consent recorded.")
    expect(row.locator("[data-role=now]")).to_have_text("yes")
    row.get_by_placeholder("where the form or letter is kept").fill("Email from mum, 3 June")
    row.get_by_role("button", name="Withdraw").click()
    # A page first: nothing of Kit's is published, so nothing comes down.
    expect(head.locator("#withdraw-summary")).to_contain_text("nothing will be taken down")
    head.get_by_role("button", name=re.compile("^Withdraw consent")).click()
    expect(head.locator("#notice")).to_contain_text("Nothing had to be taken down.")
    expect(row.locator("[data-role=now]")).to_have_text("withdrawn")
    expect(head.locator("table.history-table")).to_contain_text("Email from mum, 3 June")
    shot(head, "06-slt-register-pupil")
    head.get_by_role("link", name="Consent register").click()
    expect(head.locator("table.register td[data-channel=website]")).to_have_text("withdrawn")

    # A teacher uploads a photo of two visitors nobody can identify, with the file picker.
    teacher = sign_in(browser, server, server.key("hill-school", "staff", "Ms Patel"))
    teacher.get_by_label("Event").fill("Author visit")
    teacher.get_by_label("What they are for").select_option("publicity")
    teacher.locator("#files").set_input_files(faces / "events" / "two_people.jpg")
    state = teacher.locator("#queue li.file [data-role=state]")
    expect(state).to_have_text("Waiting for a senior leader", timeout=CHECKED_S)

    # The head clears both faces; the policy wants a second SLT member.
    head.goto("/review")
    head.locator("li.queue-item").filter(has_text="Author visit").get_by_role(
        "link", name="Review").click()
    expect(head.locator("li.face")).to_have_count(2)
    form = head.locator("#approve-form")
    form.get_by_label("Newsletter").check()
    boxes = form.get_by_label(re.compile(r"Face \d \(.*\) may be shown"))
    expect(boxes).to_have_count(2)
    for box in boxes.all():
        box.check()
    form.get_by_label("Why this is fine to publish").fill(
        "The two visiting authors; both signed the visitor photo consent form.")
    form.get_by_role("button", name="Approve").click()
    expect(head.locator(".notice.ok")).to_contain_text("second SLT member must now confirm")
    expect(head.locator("section.attention")).to_contain_text("You made this request")
    expect(head.locator("table.where tr[data-channel=newsletter]")).to_contain_text("Blocked")
    shot(head, "07-slt-awaiting-second")

    deputy = sign_in(browser, server, server.key("hill-school", "slt", "Mrs Ode (Deputy)"))
    deputy.goto(head.url.split("?")[0])
    waiting = deputy.locator("section.attention")
    waiting.get_by_label("Your reason for confirming").fill("Checked the visitor book; agreed.")
    waiting.get_by_role("button", name="Confirm").click()
    expect(deputy.locator(".notice.ok")).to_contain_text("Confirmed")
    newsletter = deputy.locator("table.where tr[data-channel=newsletter]")
    expect(newsletter).to_contain_text("Allowed")
    # Allowed now, so it can be published from here.
    expect(newsletter.get_by_role("button", name=re.compile("^Publish"))).to_be_visible()
    shot(deputy, "08-second-slt-confirmed")

    # The deputy rejects it after all: its files go, and the reason is logged.
    deputy.locator("#reject-box summary").click()
    reject = deputy.locator("#reject-form")
    reject.get_by_label("Why it should go").fill("The authors asked us not to use it after all.")
    reject.get_by_role("button", name="Reject and delete").click()
    expect(deputy.locator("#confirm-summary")).to_contain_text("deleted for good")
    deputy.get_by_role("button", name="Yes, reject and delete").click()
    expect(deputy.locator(".notice.ok")).to_contain_text("Rejected")
    expect(deputy.locator("h1 .state")).to_have_text("Rejected and deleted")
    expect(deputy.locator("#reject-form")).to_have_count(0)
    deputy.get_by_role("link", name="Audit log").click()
    for action, text in [("review.rejected", "asked us not to use it"),
                         ("review.confirmed", "visitor book"),
                         ("review.awaiting_second_slt", "visiting authors")]:
        expect(deputy.locator(f"tr[data-action='{action}']").first).to_contain_text(text)
    shot(deputy, "09-audit-after-reject")
