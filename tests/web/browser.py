"""A real `consentgate serve` on a fresh data directory, driven by Debian's Chromium through
Playwright. Playwright never downloads a browser here; `make test` installs Chromium."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support import POLICIES, ROOT, embedded_server, run_cli_in

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@dataclass
class Server:
    base: str
    env: dict[str, str]
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        return run_cli_in(self.env, *args)

    def org(self, slug: str, policy: str = "primary-school") -> None:
        self.cli("org", "create", slug, "--name", slug.replace("-", " ").title(),
                 "--policy", str(POLICIES / f"{policy}.yaml"))

    def key(self, org: str, role: str, name: str) -> str:
        """A sign-in key (bearer token), made once per person."""
        if (org, name) not in self.keys:
            self.keys[(org, name)] = self.cli(
                "token", "create", "--org", org, "--role", role, "--name", name
            ).strip().splitlines()[-1]
        return self.keys[(org, name)]

    def api(self, org: str, role: str, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(org, role, name)}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with embedded_server(tmp_path_factory.mktemp("browser-serve")) as (base, env):
        yield Server(base, env)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make test` installs it "
                    "(apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(browser: Browser, server: Server, key: str) -> Page:
    """A fresh browser context (its own cookies), signed in with the key."""
    context = browser.new_context(base_url=server.base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Sign-in key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)
    return page


def drop_files(page: Page, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drag files from the desktop onto an element: a drop event carrying them."""
    payload = [[name, base64.b64encode(data).decode(), mime] for name, data, mime in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, b64, mime] of files) {
                const bin = atob(b64);
                const bytes = new Uint8Array(bin.length);
                for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
                dt.items.add(new File([bytes], name, { type: mime }));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})
