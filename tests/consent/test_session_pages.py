"""The pages: SLT approve a photography session on /sessions; staff see theirs and pick
it, and a purpose from the policy's list, on the upload page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support import create_org, token

HTML = {"Accept": "text/html"}


def _sign_in(client: TestClient, headers: dict[str, str]) -> str:
    client.cookies.clear()
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", headers=HTML, follow_redirects=False, data={
        "token": headers["Authorization"].split()[1], "csrf": nonce.group(1), "next": "/"})
    assert r.status_code == 303, r.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/sessions", headers=HTML).text)
    assert csrf
    return csrf.group(1)


def test_slt_approve_a_session_and_staff_pick_it_on_the_upload_page(
        client: TestClient) -> None:
    create_org("school", policy="primary-school")
    slt = token("school", "slt", "Mrs Head")
    ann, bob = token("school", "staff", "Ann Teacher"), token("school", "staff", "Bob Teacher")
    ann_id = next(p["id"] for p in client.get("/api/v1/sessions/people", headers=slt).json()
                  if p["name"] == "Ann Teacher")
    csrf = _sign_in(client, slt)
    page = client.get("/sessions", headers=HTML).text
    # Purposes are offered from the policy, with their retention; never typed.
    assert '<select id="s-purpose" name="purpose" required>' in page
    assert "extra-school activities (kept 365 days)" in page
    # The policy forbids personal devices, so a session cannot offer them.
    assert 'value="personal"' not in page

    r = client.post("/sessions", headers=HTML, follow_redirects=False, data={
        "csrf": csrf, "event": "Sports day", "purpose": "Extra-school activities",
        "dates": "2026-06-10, 2026-06-11", "staff": [ann_id], "devices": ["school"]})
    assert r.status_code == 303, r.text
    page = client.get("/sessions?done=session", headers=HTML).text
    assert "Photography session approved." in page and "2026-06-10, 2026-06-11" in page
    r = client.post("/sessions", headers=HTML, data={
        "csrf": csrf, "event": "Disco", "purpose": "fun", "dates": "2026-06-12",
        "staff": [ann_id], "devices": ["school"]})
    assert r.status_code == 422 and "unknown purpose" in r.text

    _sign_in(client, ann)
    upload = client.get("/upload", headers=HTML).text
    assert 'name="purpose"' in upload and '<input id="purpose"' not in upload
    assert re.search(r'<option value="celebrating achievement">', upload)
    picker = re.search(r'<select id="session_id".*?</select>', upload, re.S)
    assert picker and "Sports day" in picker.group(0)

    _sign_in(client, bob)
    picker = re.search(r'<select id="session_id".*?</select>',
                       client.get("/upload", headers=HTML).text, re.S)
    assert picker and "Sports day" not in picker.group(0)
