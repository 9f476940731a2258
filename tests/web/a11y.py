"""Layout and accessibility checks for any page in the browser tests: nothing wider than
the window (no sideways scrolling at laptop or phone size), and axe-core finds no serious
or critical violation. axe-core comes from the npm registry through `make browser`
(tests/web/axe/package-lock.json); it is read from disk, never downloaded here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SIZES = {"laptop": LAPTOP, "phone": PHONE}
BAD = ("serious", "critical")


def _axe_source() -> str:
    if not AXE.exists():
        raise AssertionError(f"axe-core is not installed at {AXE}: run `make browser`")
    return AXE.read_text(encoding="utf-8")


def overflow(page: Page) -> dict[str, object]:
    """How wide the page is against the window, and the widest elements sticking out."""
    result: dict[str, object] = page.evaluate("""() => {
        const w = window.innerWidth;
        const out = [];
        for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.right > w + 1 && r.width > 0) {
                let inScroller = false;
                for (let p = el.parentElement; p; p = p.parentElement) {
                    const s = getComputedStyle(p);
                    if (['auto', 'scroll', 'hidden'].includes(s.overflowX)) {
                        inScroller = true; break;
                    }
                }
                const cls = typeof el.className === 'string' && el.className
                    ? '.' + el.className.split(' ').join('.') : '';
                if (!inScroller) out.push(el.tagName.toLowerCase() +
                    (el.id ? '#' + el.id : '') + cls + ' right=' + Math.round(r.right));
            }
        }
        return {scrollWidth: document.documentElement.scrollWidth, innerWidth: w,
                culprits: out.slice(0, 8)};
    }""")
    return result


def axe_violations(page: Page) -> list[dict[str, object]]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # The pages' CSP forbids inline scripts, which add_script_tag(content=) would be;
        # evaluating the source through the DevTools protocol is not a page script.
        page.evaluate(_axe_source() + "\n;undefined")
    found: list[dict[str, object]] = page.evaluate("""async () => {
        const r = await window.axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, summary: n.failureSummary}))}));
    }""")
    return [v for v in found if v.get("impact") in BAD]


def check_page(page: Page, label: str = "") -> None:
    """The page at its current size: fits the window, and no serious or critical axe
    violations."""
    where = label or page.url
    fit = overflow(page)
    assert int(str(fit["scrollWidth"])) <= int(str(fit["innerWidth"])), (
        f"{where}: page is {fit['scrollWidth']} px wide in a {fit['innerWidth']} px window; "
        f"sticking out: {fit['culprits']}")
    bad = axe_violations(page)
    assert not bad, f"{where}: axe-core violations:\n{json.dumps(bad, indent=1)}"


@contextmanager
def at_size(page: Page, size: dict[str, int]) -> Iterator[Page]:
    before = page.viewport_size
    page.set_viewport_size(size)
    try:
        yield page
    finally:
        if before:
            page.set_viewport_size(before)


def check_both_sizes(page: Page, label: str = "") -> None:
    """check_page at 1366x768 and at 390x844. The page is not reloaded (it may be the
    answer to a form), the layout reflows when the window changes size."""
    for name, size in SIZES.items():
        with at_size(page, size):
            check_page(page, f"{label or page.url} at {name}")
