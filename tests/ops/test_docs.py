"""The API docs work where a school's firewall lets nothing out: the pages name no other
host, and Chromium renders the operations with every non-local request refused."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Route

from tests.web.browser import Server

URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
ANY_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


def test_the_docs_page_references_only_the_app_itself(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    html = r.text
    assert ANY_URL.findall(html) == []
    assets = URL_ATTR.findall(html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets + re.findall(r"""["'](/[^"']+\.js)["']""", html):
        assert urlsplit(asset).netloc == "", asset
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 1000, asset
    assert "/openapi.json" in html
    # ReDoc is not offered: its file loads a logo from the vendor's CDN.
    assert client.get("/redoc").status_code == 404


def _offline(route: Route, own: str, refused: list[str]) -> None:
    if urlsplit(route.request.url).netloc == own:
        route.continue_()
    else:
        refused.append(route.request.url)
        route.abort()


def test_swagger_ui_renders_the_operations_with_no_network(
        browser: Browser, server: Server) -> None:
    own = urlsplit(server.base).netloc
    refused: list[str] = []
    context = browser.new_context(base_url=server.base)
    context.route("**/*", lambda route: _offline(route, own, refused))
    page = context.new_page()
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/media" in [p.replace("\u200b", "") for p in paths]
    assert page.locator(".opblock").count() >= 20
    # The bearer scheme gives the page its Authorize button.
    assert page.get_by_role("button", name=re.compile("Authorize")).count() >= 1
    assert refused == []
    context.close()
