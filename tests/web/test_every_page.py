"""Every page of the web app, with realistic content, in Debian's Chromium against a real
`consentgate serve`: one school with pupils, consents, a photography session, uploads and
an import preview with errors, walked as an administrator, a senior leader and a member of
staff. Each page is checked at 1366x768 and 390x844 (no sideways scrolling, no serious or
critical axe-core violation) and must not show internal codes (`social_media`,
`not_returned`, role codes, raw ids) to people. Screenshots go to artifacts/screenshots/
as every-<page>-<size>.png."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.consent.support import enrol_face
from tests.imports.support import make_upn
from tests.support import wait_screened
from tests.web.a11y import SIZES, at_size, check_page
from tests.web.browser import Server, shot, sign_in

ORG = "every-school"
# Words a person should never read on a page: channel, consent-state and role codes, and
# ids where a name belongs.
CODES = re.compile(r"\b(?:[a-z]+_[a-z_]+|slt|publisher)\b")
# Audit action codes ("session.created"), which file names look like too.
ACTION_CODES = re.compile(r"\b[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*\b")
FILE_TYPES = {"jpg", "jpeg", "png", "csv", "zip", "txt", "mp4", "webm", "html", "heic"}
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _scene(n: int) -> bytes:
    """A face-free picture, different for every n."""
    h, w = 240, 320
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w + n * 17) % 256, (y * 255 // h + n * 29) % 256,
                    ((x + y) * 127 // (w + h) + n * 7) % 256], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _upload(http: httpx.Client, who: dict[str, str], name: str, data: bytes, event: str,
            purpose: str = "publicity") -> str:
    r = http.post("/api/v1/media", headers=who,
                  data={"event": event, "purpose": purpose, "device": "school"},
                  files={"file": (name, data, "image/jpeg")})
    assert r.status_code == 202, r.text
    media_id: str = r.json()["id"]
    return media_id


class Walk:
    """Checks each page it is shown and keeps every problem, so one run lists them all."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: list[str] = []

    def check(self, page: Page, label: str) -> None:
        self.seen.append(label)
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        for size_name, size in SIZES.items():
            with at_size(page, size):
                try:
                    check_page(page, f"{label} at {size_name}")
                except AssertionError as exc:
                    self.problems.append(str(exc))
                shot(page, f"every-{slug}-{size_name}")
        # Text set as <code> (a new key's secret, the CSV's column names) is meant to be
        # copied exactly, and an import problem names the file's own column as the file
        # does; everything else is for reading.
        text: str = page.evaluate("""() => {
            const body = document.body.cloneNode(true);
            body.querySelectorAll('code, script, style, #import-errors td:nth-child(2)')
                .forEach(e => e.remove());
            document.documentElement.appendChild(body);
            const t = body.innerText;
            body.remove();
            return t;
        }""")
        codes = sorted(set(CODES.findall(text)) | {
            c for c in ACTION_CODES.findall(text)
            if c.rsplit(".", 1)[1] not in FILE_TYPES and c not in ("e.g", "i.e")})
        if codes:
            self.problems.append(f"{label}: internal codes shown: {codes}")
        ids = UUID.findall(text)
        if ids:
            self.problems.append(f"{label}: raw ids shown: {ids[:3]}")


def test_every_page_fits_a_phone_and_a_laptop_and_passes_axe(
    server: Server, browser: Browser, faces: Path, tmp_path: Path
) -> None:
    server.org(ORG, "arts-service")
    admin_key = server.key(ORG, "admin", "Ms Okafor (Office)")
    slt = server.api(ORG, "slt", "Mrs Khan (Head)")
    staff = server.api(ORG, "staff", "Mr Jones")
    with httpx.Client(base_url=server.base, timeout=120) as http:
        kit = enrol_face(http, slt, faces, "kit_harington", 1)
        r = http.put(f"/api/v1/pupils/{kit}/consents", headers=slt, json={
            "consents": {"website": "granted", "social_media": "refused",
                         "newsletter": "granted"},
            "given_by": "guardian", "evidence_ref": "form 2026/1"})
        assert r.status_code == 200, r.text
        r = http.put(f"/api/v1/pupils/{kit}/consents/capture", headers=slt, json={
            "status": "granted", "given_by": "guardian", "evidence_ref": "capture form"})
        assert r.status_code == 200, r.text
        rose = enrol_face(http, slt, faces, "rose_leslie", 2, year_group="Year 6")
        for n, name in enumerate(["Amelia Brown", "Oliver Smith", "Isla Wilson"], 3):
            given, family = name.split()
            r = http.post("/api/v1/pupils", headers=slt, json={
                "external_id": f"UPN{n:04d}", "given_name": given, "family_name": family,
                "year_group": "Year 4"})
            assert r.status_code == 201, r.text
        concert = _upload(http, staff, "concert-kit.jpg",
                          (faces / "events" / "johnsnow_test1.jpg").read_bytes(),
                          "Spring concert")
        fair = _upload(http, staff, "fair-kit-rose.jpg",
                       (faces / "events" / "kit_with_rose.jpg").read_bytes(), "Summer fair")
        visitor = _upload(http, staff, "visitor.jpg",
                          (faces / "events" / "obama1.jpg").read_bytes(), "Summer fair")
        scenes = [_upload(http, staff, f"sports-{n}.jpg", _scene(n), "Sports day",
                          purpose="curriculum") for n in range(3)]
        for media_id in [concert, fair, visitor, *scenes]:
            wait_screened(http, slt, media_id)

    walk = Walk()

    # Signed out: the sign-in page, and a wrong key.
    context = browser.new_context(base_url=server.base)
    out = context.new_page()
    out.goto("/signin")
    walk.check(out, "sign-in")
    out.get_by_label("Sign-in key").fill("not-a-key")
    out.get_by_role("button", name="Sign in").click()
    expect(out.locator("body")).to_contain_text(re.compile("key", re.I))
    walk.check(out, "sign-in refused")
    context.close()

    # Administrator: the keys page, the pipeline page, the audit log.
    admin = sign_in(browser, server, admin_key)
    admin.goto("/")
    walk.check(admin, "admin home")
    admin.goto("/keys")
    expect(admin.get_by_role("heading", level=1)).to_be_visible()
    walk.check(admin, "keys")
    admin.get_by_label("Who holds it").fill("Mr Patel (Year 4)")
    admin.get_by_role("button", name="Create key").click()
    expect(admin.locator("code").first).to_contain_text("cg_")
    walk.check(admin, "key created")
    admin.goto("/audit")
    walk.check(admin, "audit as admin")

    # Senior leader.
    head = sign_in(browser, server, server.key(ORG, "slt", "Mrs Khan (Head)"))
    head.goto("/sessions")
    walk.check(head, "sessions empty")
    head.get_by_label(re.compile("^Event")).fill("Year 5 sports day")
    head.locator("#s-purpose").select_option("publicity")
    head.locator("#s-dates").fill("2026-06-10, 2026-06-11")
    head.locator("input[name=staff]").first.check()
    head.get_by_role("button", name="Approve session").click()
    expect(head.locator("body")).to_contain_text("Year 5 sports day")
    walk.check(head, "sessions")

    head.goto("/review")
    expect(head.locator("#waiting li.queue-item").first).to_be_visible()
    walk.check(head, "review queue")
    head.goto("/review?event=Summer+fair")
    head.get_by_label("Approve", exact=True).check()
    head.get_by_role("button", name=re.compile("Decide all of")).click()
    expect(head.locator("table.summary tbody tr")).to_have_count(2)
    walk.check(head, "bulk summary")
    head.goto("/review?view=decided")
    expect(head.locator("#decided li.queue-item")).to_have_count(3)
    walk.check(head, "decided view")

    head.goto(f"/review/{concert}")
    walk.check(head, "review item")
    website = head.locator("table.where tr[data-channel=website]")
    website.get_by_role("button", name=re.compile("^Publish")).click()
    expect(head.locator(".notice.ok")).to_have_text("Published.")
    walk.check(head, "review item published")
    head.locator("#reject-box summary").click()
    head.locator("#reject-why").fill("Not worth keeping after all.")
    head.get_by_role("button", name="Reject and delete").click()
    expect(head.get_by_role("heading", level=1)).to_be_visible()
    walk.check(head, "reject confirmation")

    head.goto(f"/review/{visitor}")
    walk.check(head, "review item unknown face")
    head.locator("li.face[data-status=unknown]").first.get_by_role(
        "link", name=re.compile("Name this pupil")).click()
    expect(head.get_by_role("heading", level=1)).to_contain_text("Who is face")
    walk.check(head, "name a face")
    head.goto(f"/review/{fair}")
    walk.check(head, "review item two pupils")

    head.goto("/published")
    expect(head.locator("#published")).to_contain_text("concert-kit.jpg")
    walk.check(head, "published library")

    head.goto("/register")
    walk.check(head, "register")
    head.goto("/register?q=smith&year=Year+4")
    walk.check(head, "register filtered")
    good = tmp_path / "pupils.csv"
    good.write_text(
        "upn,given_name,family_name,year_group,reg_group,website,social_media,capture,"
        "given_by,evidence_ref\n"
        f"{make_upn(1)},Noah,Taylor,Year 3,3T,granted,refused,granted,guardian,MIS 2026\n"
        f"{make_upn(2)},Amelia,Brown,Year 4,4B,granted,,granted,guardian,MIS 2026\n")
    head.goto("/register")
    head.locator("#import-file").set_input_files(str(good))
    head.get_by_role("button", name="Check the file").click()
    expect(head.locator("#import-preview")).to_contain_text("Check before importing")
    expect(head.locator("#import-preview")).to_contain_text(
        "The file is ConsentGate's template with 2 pupils")
    walk.check(head, "import preview")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "upn,given_name,family_name,year_group,website,capture\n"
        ",Noah,Taylor,Year 3,granted,granted\n"
        "UPN0009,,Taylor,Year 3,perhaps,granted\n"
        "UPN0010,Ava,Jones,,granted,sometimes\n")
    head.locator("#import-file").set_input_files(str(bad))
    head.get_by_role("button", name="Check the file").click()
    expect(head.locator("#import-errors")).to_be_visible()
    walk.check(head, "import errors")
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as z:
        z.writestr(f"{make_upn(1)}.jpg", _scene(50))
        z.writestr("UPN9999.jpg", _scene(51))
        z.writestr("notes.txt", "not a photo")
    head.locator("#photo-zip").set_input_files(str(photos))
    head.get_by_role("button", name="Enrol photos").click()
    expect(head.locator("#photo-results")).to_be_visible()
    walk.check(head, "photo import results")

    head.goto(f"/register/{kit}")
    walk.check(head, "pupil page")
    consent = head.locator("table.consent-now tr[data-channel=website]")
    consent.get_by_placeholder("where the form or letter is kept").fill("Email from dad")
    consent.get_by_role("button", name="Withdraw").click()
    expect(head.locator("#withdraw-summary")).to_be_visible()
    walk.check(head, "withdrawal confirmation")
    head.goto(f"/register/{rose}")
    head.locator("#bio-status").select_option("objected")
    head.locator("#bio-evidence").fill("Letter from mum, 2 May")
    head.get_by_role("button", name="Record", exact=True).click()
    expect(head).to_have_url(re.compile(r"/biometric$"))
    walk.check(head, "face matching objection confirmation")

    head.goto("/audit")
    walk.check(head, "audit log")
    about = head.locator("table.audit tbody td:nth-child(4)")
    expect(about.filter(has_text=re.compile(r"^\s*(org|token|session)\s*$"))).to_have_count(0)
    expect(about.filter(has_text="a photography session")).to_have_count(1)
    expect(head.locator("table.audit")).to_contain_text("Approved a photography session")
    expect(head.locator("table.audit")).to_contain_text("school cameras and tablets")
    head.goto(f"/review/{uuid.uuid4()}")
    walk.check(head, "error page")

    # Staff: the upload page with the session picker, and the sessions they are on.
    teacher = sign_in(browser, server, server.key(ORG, "staff", "Mr Jones"))
    expect(teacher.locator("#purpose")).to_be_visible()
    walk.check(teacher, "upload page")
    teacher.goto("/sessions")
    walk.check(teacher, "sessions as staff")

    # The website pipeline's own key: its page says what it is for.
    pipeline = sign_in(browser, server, server.key(ORG, "publisher", "School website"))
    pipeline.goto("/")
    walk.check(pipeline, "pipeline home")

    print(f"checked {len(walk.seen)} pages at two sizes")
    assert not walk.problems, "\n\n".join(walk.problems)
