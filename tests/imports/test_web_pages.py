"""The register page at school scale (search, year and registration-group filters,
paging, the template, the import form with a preview) and the API keys page."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from tests.imports.support import make_csv, make_upn
from tests.support import create_org, token

HTML = {"Accept": "text/html"}


def _sign_in(client: TestClient, headers: dict[str, str]) -> str:
    key = headers["Authorization"].split()[1]
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": key, "csrf": nonce.group(1), "next": "/register"})
    assert r.status_code == 303, r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/register", headers=HTML).text)
    assert csrf
    return csrf.group(1)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-pupil="([^"]+)"', html)


def test_import_with_preview_then_search_filter_and_page(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    csrf = _sign_in(client, slt)
    template = client.get("/register/import/template.csv", headers=HTML)
    assert template.status_code == 200 and template.text.startswith("upn,given_name")

    data = make_csv("sims", range(120), overrides={5: {"upn": "B801200005002"}})
    bad = client.post("/register/import", headers=HTML, data={"csrf": csrf},
                      files={"file": ("p.csv", data, "text/csv")})
    assert bad.status_code == 422
    assert "Nothing was imported" in bad.text and "<td>7</td><td>UPN</td>" in bad.text

    data = make_csv("sims", range(120))
    preview = client.post("/register/import", headers=HTML, data={"csrf": csrf},
                          files={"file": ("p.csv", data, "text/csv")})
    assert preview.status_code == 200
    assert "Importing it will add 120, update 0" in " ".join(preview.text.split())
    assert "No pupils yet" in preview.text  # a preview changes nothing
    content = re.search(r'name="content" value="([^"]+)"', preview.text)
    assert content
    done = client.post("/register/import", headers=HTML, data={
        "csrf": csrf, "content": content.group(1), "action": "import"})
    assert done.status_code == 200
    assert "120 added" in " ".join(done.text.split())

    page1 = client.get("/register", headers=HTML).text
    assert len(_rows(page1)) == 50 and "Showing 1\u201350 of 120" in page1
    assert 'rel="next"' in page1
    page3 = client.get("/register?page=3", headers=HTML).text
    assert len(_rows(page3)) == 20 and "Showing 101\u2013120 of 120" in page3
    beyond = client.get("/register?page=99", headers=HTML).text
    assert "Showing 101\u2013120 of 120" in beyond and "Page 3 of 3" in beyond
    found = client.get(f"/register?q={make_upn(7)}", headers=HTML).text
    assert len(_rows(found)) == 1 and "Family0007" in found
    by_name = client.get("/register?q=family0011", headers=HTML).text
    assert len(_rows(by_name)) == 1
    year = client.get("/register?year=Year+2", headers=HTML).text
    assert len(_rows(year)) == 20 and '<option value="Year 2" selected>' in year
    reg = client.get("/register?reg=1A", headers=HTML).text
    assert len(_rows(reg)) == 20 and '<option value="1A" selected>' in reg
    assert len(_rows(client.get("/register?year=Year+1&reg=2B", headers=HTML).text)) == 0
    assert ">refused<" in page1  # refused shows as refused, not "expired"
    audit = client.get("/audit", headers=HTML)
    assert audit.status_code == 200 and "Imported the register from the MIS" in audit.text


def test_admin_revokes_a_key_on_the_keys_page(client: TestClient) -> None:
    create_org("school")
    admin = token("school", "admin", "Head")
    slt = token("school", "slt", "Deputy")
    csrf = _sign_in(client, admin)
    page = client.get("/keys", headers=HTML)
    assert page.status_code == 200 and "Deputy" in page.text
    made = client.post("/keys", headers=HTML, data={"csrf": csrf, "name": "Photographer",
                                                    "role": "staff", "expires_in": "30d"})
    assert made.status_code == 200
    secret = re.search(r"<code>(cg_[^<]+)</code>", made.text)
    assert secret
    staff = {"Authorization": f"Bearer {secret.group(1)}"}
    assert client.get("/api/v1/media", headers=staff).status_code != 401
    deputy = next(t for t in client.get("/api/v1/tokens", headers=admin).json()
                  if t["name"] == "Deputy")
    r = client.post(f"/keys/{deputy['id']}/revoke", headers=HTML, data={"csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/pupils", headers=slt).status_code == 401
    listing = client.get("/keys", headers=HTML).text
    row = listing[listing.index(f'data-key="{deputy["id"]}"'):]
    assert "<td>revoked</td>" in row[:row.index("</tr>")]


def test_only_admins_see_the_keys_page(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    _sign_in(client, slt)
    assert client.get("/keys", headers=HTML).status_code == 403


def test_enrolment_photos_zip_on_the_register_page(client: TestClient, faces: Path) -> None:
    create_org("school")
    slt = token("school", "slt")
    csrf = _sign_in(client, slt)
    client.post("/api/v1/imports/pupils", headers=slt, files={
        "file": ("p.csv", make_csv("sims", range(3)), "text/csv")})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(f"{make_upn(0)}.jpg",
                         (faces / "enrol" / "obama" / "obama_a.jpg").read_bytes())
        archive.writestr(f"{make_upn(1)}.jpg",
                         (faces / "enrol" / "biden" / "biden_a.jpg").read_bytes())
    r = client.post("/register/import-photos", headers=HTML, data={"csrf": csrf},
                    files={"file": ("photos.zip", buf.getvalue(), "application/zip")})
    assert r.status_code == 200, r.text
    text = " ".join(r.text.split())
    assert "1 enrolled, 1 refused" in text
    assert f'<tr data-result="refused"><td>{make_upn(1)}.jpg</td>' in r.text
    assert "no biometric consent" in r.text
    pupil = client.get("/api/v1/pupils", headers=slt, params={"q": make_upn(0)}).json()[0]
    assert pupil["templates"] == 1
    # Without the page's CSRF token nothing happens.
    r = client.post("/register/import-photos", headers=HTML,
                    files={"file": ("photos.zip", buf.getvalue(), "application/zip")})
    assert r.status_code == 403
