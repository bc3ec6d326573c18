"""The search page's layout, accessibility and status panel, at desktop and phone sizes.

axe-core (npm, ``node_modules/axe-core``) runs inside the page: no serious or critical
violation with results shown, the viewer open and the status panel open. Screenshots for
people to look at go to ``build/screenshots/`` (gitignored). The status panel's polling is
checked with Playwright's fake clock: no real minute is waited.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.cli_harness import seeded_cloud
from tests.e2e.test_web_page import (
    DESKTOP,
    PHONE,
    REPO,
    open_page,
    paths,
    search,
    shot,
    wait_idle,
)
from tests.e2e.web_harness import Served, browser, served

pytestmark = pytest.mark.e2e
__all__ = ["browser", "seeded_cloud", "served"]

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run npm install in {REPO} (package.json has axe-core)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => ["serious", "critical"].includes(v.impact))
                .map(v => v.id + ": " + v.help + " @ " + v.nodes.map(n => n.target).join(", "));
        }"""
    )
    return found


BORDER_CONTRAST = """() => {
    const lum = (css) => {
        const [r, g, b] = css.match(/\\d+/g).slice(0, 3).map(Number).map((v) => {
            v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
                              return (x + 0.05) / (y + 0.05); };
    return ["text", "k", "folder", "format", "min_kb", "since"].map((id) => {
        const e = document.getElementById(id); const s = getComputedStyle(e);
        const around = getComputedStyle(e.closest("#filters-box, section")).backgroundColor;
        const behind = around === "rgba(0, 0, 0, 0)"
            ? getComputedStyle(document.body).backgroundColor : around;
        const border = s.borderTopColor;
        return [id, Math.min(ratio(border, s.backgroundColor), ratio(border, behind))];
    });
}"""
"""WCAG 1.4.11: each field's border against the field and against what surrounds it."""


@pytest.mark.browser
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_no_serious_accessibility_violations(served: Served, browser: Any, size: str) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    with open_page(browser, served, viewport=viewport) as opened:
        page = opened.page
        assert serious_violations(page) == []
        low = [(f, r) for f, r in page.evaluate(BORDER_CONTRAST) if r < 3]
        assert low == []
        search(page, "blue", k=6)
        page.click("#weak-toggle")
        if size == "phone":  # folded at first on a narrow screen
            assert not page.evaluate("document.getElementById('status').open")
            page.click("#status summary")
            page.click("#filters-box summary")
        page.wait_for_selector("#status-list dd[data-field='DLQ']")
        assert page.evaluate("document.getElementById('status').open")
        assert serious_violations(page) == []
        shot(page, f"{size}-results")
        page.locator("#results .result .open").first.click()
        page.wait_for_selector("#viewer[open]")
        page.wait_for_function("document.getElementById('viewer-img').naturalWidth > 0")
        assert serious_violations(page) == []
        shot(page, f"{size}-viewer", full_page=False)
        # Every image has alt text; every field has a visible label.
        assert page.evaluate("[...document.images].every(i => i.hasAttribute('alt'))")
        for field in ("text", "k", "folder", "format", "min_kb", "max_kb", "since", "until"):
            assert page.is_visible(f"label[for='{field}']"), field


@pytest.mark.browser
def test_the_phone_layout(served: Served, browser: Any) -> None:
    with open_page(browser, served, viewport=PHONE, has_touch=True, is_mobile=True) as opened:
        page = opened.page
        # Touch devices are told to choose, not drop.
        assert page.evaluate("matchMedia('(pointer: coarse)').matches")
        assert page.text_content("#drop-text").startswith("Choose an image")
        assert not page.evaluate("document.getElementById('filters-box').open")
        search(page, "blue", k=9)
        page.click("#weak-toggle")
        # 2-3 columns of results, the status panel above them and collapsible.
        columns = page.evaluate(
            "getComputedStyle(document.getElementById('weak-results'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert 2 <= columns <= 3
        status_box = page.locator("#status").bounding_box()
        results_box = page.locator("#search").bounding_box()
        assert status_box is not None and results_box is not None
        assert status_box["y"] < results_box["y"]
        assert page.evaluate("document.getElementById('status').tagName") == "DETAILS"
        # Tap targets: every visible button, link-button, input and summary is >= 44 px.
        small = page.evaluate(
            """() => [...document.querySelectorAll(
                    'button, a.button, input:not([type=hidden]), select, summary')]
                .filter(e => e.offsetParent !== null && !e.closest('dialog'))
                .map(e => [e.id || e.className, e.getBoundingClientRect()])
                .filter(([, r]) => r.height < 44 || r.width < 44)
                .map(([name, r]) =>
                    name + " " + Math.round(r.width) + "x" + Math.round(r.height))"""
        )
        assert small == []
        shot(page, "phone-weak-matches")
        # The error state on a phone: the page's own message, no stale grid.
        page.fill("#k", "0")
        page.click("#search-btn")
        page.wait_for_selector("#message.error")
        assert page.locator(".result").count() == 0
        shot(page, "phone-error", full_page=False)


@pytest.mark.browser
def test_weak_matches_stand_apart_and_no_good_matches_says_so(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        # "coffee" as text finds only weak matches with the stand-in model.
        search(page, "coffee", k=5)
        assert page.is_visible("#no-good")
        assert paths(page) == []
        assert not page.is_visible("#weak-results")
        assert page.get_attribute("#weak-toggle", "aria-expanded") == "false"
        assert page.text_content("#weak-toggle") == "Show 5 weak matches"
        assert "smaller is closer" in page.text_content("#distance-help")
        page.click("#weak-toggle")
        assert len(paths(page, "#weak-results")) == 5
        assert page.get_attribute("#weak-toggle", "aria-expanded") == "true"
        shot(page, "desktop-weak-matches")
        # A query with strong matches: they are in the main list, no "no good matches".
        search(page, "blue", k=3)
        assert not page.is_visible("#no-good")
        assert paths(page)[0].endswith("colours/blue.jpg")


@pytest.mark.browser
def test_load_more_asks_for_a_larger_k_and_appends(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "blue", k=2)
        first = paths(page)
        assert page.is_visible("#more")
        page.click("#more")
        wait_idle(page)
        assert page.input_value("#k") == "4"
        assert "k=4" in page.url
        assert paths(page)[: len(first)] == first
        assert len(paths(page)) + len(paths(page, "#weak-results")) > len(first)


@pytest.mark.browser
def test_the_status_panel_explains_polls_rarely_and_lists_failures(
    served: Served, browser: Any
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.clock.install()
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if "/api/status" in r.url else None)
        page.goto(served.url + "/")
        page.wait_for_selector("#status-list dd[data-field='DLQ']")
        assert page.text_content("#status-list dd[data-field='DLQ']") == "0"
        assert len(polls) == 1
        assert page.text_content("#status-note").startswith("updated ")
        # Each label explains itself on hover and on focus.
        label = page.locator("#status-list .label").first
        assert label.get_attribute("title")
        help_id = label.get_attribute("aria-describedby")
        assert help_id and page.locator(f"#{help_id}").text_content()
        label.focus()
        assert page.is_visible(f"#{help_id}")
        # At most one poll per status_poll_seconds (60), and none while the tab is hidden.
        page.clock.run_for(30_000)
        assert len(polls) == 1
        with page.expect_request(lambda r: "/api/status" in r.url):
            page.clock.run_for(31_000)
        assert len(polls) == 2
        page.evaluate(
            """() => { Object.defineProperty(document, 'visibilityState',
                        {configurable: true, get: () => 'hidden'});
                      document.dispatchEvent(new Event('visibilitychange')); }"""
        )
        page.clock.run_for(180_000)
        assert len(polls) == 2
        with page.expect_request(lambda r: "/api/status" in r.url):
            page.evaluate(
                """() => { Object.defineProperty(document, 'visibilityState',
                            {configurable: true, get: () => 'visible'});
                          document.dispatchEvent(new Event('visibilitychange')); }"""
            )
        assert len(polls) == 3
        # The failures figure links to the list of failed images (none here).
        with page.expect_response(lambda r: "/api/failures" in r.url):
            page.click("#status-list dd[data-field='DLQ'] a")
        page.wait_for_selector("#failures[open]")
        page.wait_for_function(
            "document.getElementById('failures-note').textContent === 'No failed images.'"
        )
        page.click("#failures-close")
    finally:
        context.close()


@pytest.mark.browser
def test_the_status_panel_keeps_its_last_figures_greyed_when_a_refresh_fails(
    served: Served, browser: Any
) -> None:
    """The page's side of an outage: the server's answer is replaced at the page's network
    edge (Playwright routing), first by a failed fetch, then by a ``stale: true`` answer."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.clock.install()
        page.goto(served.url + "/")
        page.wait_for_selector("#status-list dd[data-field='DLQ']")
        assert "stale" not in (page.get_attribute("#status", "class") or "")
        outage = "Can't reach SQS / CloudWatch at http://127.0.0.1:9 — is the local cloud running?"
        page.route(
            "**/api/status",
            lambda route: route.fulfill(status=503, json={"error": outage}),
        )
        with page.expect_response(lambda r: "/api/status" in r.url):
            page.clock.run_for(61_000)
        page.wait_for_function("document.getElementById('status').classList.contains('stale')")
        assert page.text_content("#status-list dd[data-field='DLQ']") == "0"  # still shown
        status_note = page.text_content("#status-note") or ""
        assert status_note.startswith("last updated ") and outage in status_note
        shot(page, "desktop-status-stale")

        page.unroute("**/api/status")
        stale = {**served_status(served), "stale": True, "error": outage}
        page.route("**/api/status", lambda route: route.fulfill(status=200, json=stale))
        with page.expect_response(lambda r: "/api/status" in r.url):
            page.clock.run_for(61_000)
        page.wait_for_function(
            "document.getElementById('status-note').textContent.startsWith('last updated')"
        )
        assert page.get_attribute("#status", "class") and "stale" in (
            page.get_attribute("#status", "class") or ""
        )
    finally:
        context.close()


def served_status(served: Served) -> dict[str, Any]:
    """The server's own status answer, as the page would get it."""
    from tests.e2e.web_harness import get

    answer: dict[str, Any] = get(served, "/api/status").json()
    return answer
