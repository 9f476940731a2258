"""The browser pages' own rules, over HTTP: sign-in makes a private session cookie, pages
need it, every form post needs the session's CSRF token and this site's origin, and
sign-out ends the session on the server."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support import create_org, token

HTML = {"Accept": "text/html"}


def _key(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce, page.text
    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": key, "csrf": nonce.group(1), "next": "/review"})
    assert r.status_code == 303, r.text
    home = client.get("/review", headers=HTML)
    assert home.status_code == 200, home.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert csrf
    return csrf.group(1)


def test_pages_send_you_to_sign_in_and_back(client: TestClient) -> None:
    r = client.get("/review", headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=/review"
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"
    page = client.get("/signin?next=https://evil.example/", headers=HTML)
    assert 'name="next" value="/"' in page.text


def test_sign_in_makes_an_httponly_lax_session_cookie(client: TestClient) -> None:
    create_org("school", policy="primary-school")
    slt = token("school", "slt", "Mrs Head")
    page = client.get("/signin", headers=HTML)
    assert "cg_signin" in page.headers["set-cookie"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    wrong = client.post("/signin", headers=HTML, data={"token": "cg_nope", "csrf": nonce})
    assert wrong.status_code == 401
    assert "not recognised" in wrong.text
    nonce = re.search(r'name="csrf" value="([^"]+)"', wrong.text).group(1)  # type: ignore[union-attr]

    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": _key(slt), "csrf": nonce, "next": "/register"})
    assert r.status_code == 303 and r.headers["location"] == "/register"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("cg_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    # The cookie is a random session secret, never the bearer token itself.
    assert _key(slt) not in cookie
    assert "Mrs Head" in client.get("/register", headers=HTML).text


def test_sign_in_needs_the_form_from_this_site(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": _key(slt), "csrf": "guessed"})
    assert r.status_code == 200
    assert "cg_session" not in r.headers.get("set-cookie", "")


def test_form_posts_need_the_csrf_token_and_this_origin(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    csrf = sign_in(client, _key(slt))
    add = {"external_id": "U1", "given_name": "Ada", "family_name": "Lovelace",
           "year_group": "Year 6"}
    r = client.post("/register", headers=HTML, data=add, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/register", headers=HTML, data={**add, "csrf": "x" * 43},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/register", data={**add, "csrf": csrf}, follow_redirects=False,
                    headers={**HTML, "Origin": "https://evil.example"})
    assert r.status_code == 403
    assert client.get("/api/v1/pupils", headers=slt).json() == []

    r = client.post("/register", headers={**HTML, "Origin": "http://testserver"},
                    data={**add, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert [p["given_name"] for p in client.get("/api/v1/pupils", headers=slt).json()] == [
        "Ada"]


def test_sign_out_ends_the_session_on_the_server(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt")
    csrf = sign_in(client, _key(slt))
    secret = client.cookies.get("cg_session")
    assert secret
    r = client.post("/signout", headers=HTML, data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.set("cg_session", secret)
    r = client.get("/review", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")


def test_each_role_sees_only_its_pages(client: TestClient) -> None:
    create_org("school")
    staff, publisher = token("school", "staff"), token("school", "publisher")
    sign_in_as = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', sign_in_as.text).group(1)  # type: ignore[union-attr]
    client.post("/signin", headers=HTML, data={"token": _key(staff), "csrf": nonce})
    assert client.get("/", headers=HTML, follow_redirects=False).headers["location"] == "/upload"
    assert client.get("/upload", headers=HTML).status_code == 200
    for page in ("/review", "/register", "/audit"):
        r = client.get(page, headers=HTML)
        assert r.status_code == 403, page
        assert "That didn't work" in r.text
    client.cookies.clear()
    nonce = re.search(r'name="csrf" value="([^"]+)"',  # type: ignore[union-attr]
                      client.get("/signin", headers=HTML).text).group(1)
    client.post("/signin", headers=HTML, data={"token": _key(publisher), "csrf": nonce})
    assert "website pipeline" in client.get("/", headers=HTML).text
    assert client.get("/upload", headers=HTML).status_code == 403
