"""The search page in a real browser (headless Chromium): searching, the race, the viewer.

The server is the production app on 127.0.0.1 over a seeded local cloud (``served``);
the browser is Debian's Chromium driven by Playwright. Each test opens a fresh browser
context, so no state leaks from one test to the next. Faults (latency, errors) are
injected at the local cloud's edge, never in the page or the server. The helpers here
(``open_page``, ``search``, ...) are shared by the other ``test_web_page_*`` modules.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localcloud.services.faults import FaultRule
from tests.e2e.cli_harness import COLOURS, colour_jpeg, library, seeded_cloud
from tests.e2e.conftest import assert_accounted
from tests.e2e.web_harness import Served, browser, get, model_calls, served

pytestmark = pytest.mark.e2e
__all__ = ["browser", "seeded_cloud", "served"]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


# --------------------------------------------------------------------------- helpers


class Opened:
    """A page in its own browser context, with what went wrong on it collected."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("request", lambda r: self.requests.append(r.url))


@contextmanager
def open_page(
    browser: Any, served: Served, path: str = "/", **context_args: Any
) -> Iterator[Opened]:
    """``path`` opened and set up (info loaded, URL state applied); no page error allowed."""
    context = browser.new_context(viewport=context_args.pop("viewport", DESKTOP), **context_args)
    page = context.new_page()
    opened = Opened(context, page)
    try:
        page.goto(served.url + path)
        page.wait_for_selector("body[data-ready='1']")
        yield opened
        assert opened.errors == []
    finally:
        context.close()


def search(page: Any, text: str, k: int | None = None) -> None:
    """Type ``text`` (and k), press Enter in the box and wait for the answer to be drawn.

    Enter, not a click on Search: leaving a changed k re-runs the shown query, whose
    Cancel button can come and go under the pointer while a click is being aimed."""
    if k is not None:
        page.fill("#k", str(k))
    page.fill("#text", text)
    page.press("#text", "Enter")
    wait_idle(page)


def wait_idle(page: Any) -> None:
    page.wait_for_function(
        "document.getElementById('search').getAttribute('aria-busy') === 'false' && "
        "!document.getElementById('message').classList.contains('busy')"
    )


def paths(page: Any, grid: str = "#results") -> list[str]:
    texts: list[str] = page.locator(f"{grid} .result .path").all_text_contents()
    return texts


def thumbnails_loaded(page: Any, count: int) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('#results .result img.thumb')].length === {count} && "
        "[...document.querySelectorAll('#results .result img.thumb')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=20_000,
    )


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    """A screenshot for people to look at (build/screenshots/, gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def file_transfer(page: Any, data: bytes, name: str, kind: str = "image/jpeg") -> Any:
    """A DataTransfer holding one file, made in the page (for drop and paste events)."""
    return page.evaluate_handle(
        """([b64, name, kind]) => {
            const bin = atob(b64); const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: kind}));
            return dt;
        }""",
        [base64.b64encode(data).decode(), name, kind],
    )


def uri(served: Served, key: str) -> str:
    return f"s3://{served.cloud.resources.source_bucket}/{key}"


# --------------------------------------------------------------------------- searching


@pytest.mark.browser
def test_a_text_search_shows_thumbnails_never_the_originals(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "red", k=3)
        # red.jpg first, its same-looking PNG folded in as a copy, two weak matches apart.
        assert len(paths(page)) == 1
        assert paths(page)[0] in {
            uri(served, "colours/red.jpg"),
            uri(served, "colours/red-wide.png"),
        }
        assert page.text_content("#results .result .copies") == "+1 copy"
        assert len(paths(page, "#weak-results")) == 1
        distances = page.locator(".result .distance").all_text_contents()
        assert all(d.startswith("distance ") for d in distances)
        page.click("#weak-toggle")
        thumbnails_loaded(page, 1)
        srcs = page.eval_on_selector_all(".result img.thumb", "imgs => imgs.map(i => i.src)")
        assert all("/thumb?" in s for s in srcs)
        # The network log: thumbnails only, no original and no presigned S3 URL.
        assert any("/thumb?" in u for u in opened.requests)
        assert not any("/original" in u or served.cloud.endpoint in u for u in opened.requests)
        assert "distance" in page.text_content("#distance-help")


@pytest.mark.browser
def test_a_slow_answer_never_replaces_a_newer_query(served: Served, browser: Any) -> None:
    """Red's model call takes 3 s; blue is asked meanwhile: blue's results stay on screen."""
    with open_page(browser, served) as opened:
        page = opened.page
        red_done: list[str] = []
        for event in ("requestfinished", "requestfailed"):
            page.on(event, lambda r: red_done.append(r.url) if "text=red" in r.url else None)
        rule = served.cloud.faults.add(
            FaultRule("bedrock", None, "InvokeModel", latency_seconds=3, match="red")
        )
        try:
            page.fill("#k", "2")
            page.fill("#text", "red")
            page.click("#search-btn")
            started = time.monotonic()
            page.wait_for_selector("#message.busy")
            assert page.get_attribute("#search", "aria-busy") == "true"
            assert page.is_visible("#cancel-btn")
            page.fill("#text", "blue")
            page.click("#search-btn")
            wait_idle(page)
            # Both are over: the browser is done with red's request (answered or aborted)
            # and the server's red call has had its 3 s; the page has had time to draw.
            page.wait_for_function("true")
            while not red_done:
                page.wait_for_timeout(100)
            time.sleep(max(0.0, started + 3.5 - time.monotonic()))
            page.wait_for_timeout(500)
        finally:
            served.cloud.faults.remove(rule.id)
        assert paths(page)[0] == uri(served, "colours/blue.jpg")
        assert not any("red" in p for p in paths(page))
        assert page.input_value("#text") == "blue"
        assert page.get_attribute("#search", "aria-busy") == "false"


@pytest.mark.browser
def test_a_running_query_can_be_cancelled(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "blue", k=2)
        rule = served.cloud.faults.add(
            FaultRule("bedrock", None, "InvokeModel", latency_seconds=3, match="green")
        )
        try:
            page.fill("#text", "green")
            page.click("#search-btn")
            page.wait_for_selector("#cancel-btn:visible")
            page.click("#cancel-btn")
            assert page.text_content("#message") == "Search cancelled."
            assert not page.is_visible("#cancel-btn")
            time.sleep(3.5)  # green's answer would have come by now
            page.wait_for_timeout(300)
        finally:
            served.cloud.faults.remove(rule.id)
        assert page.text_content("#message") == "Search cancelled."
        assert paths(page) == []  # neither blue's old grid (the box says green) nor green's


@pytest.mark.browser
def test_the_box_the_message_and_the_grid_agree(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "blue", k=2)
        assert page.locator(".result").count() == 2
        # An empty box and Search: no query, so no results either (one rule: clear).
        page.fill("#text", "")
        page.click("#search-btn")
        assert page.locator(".result").count() == 0
        assert "Type something" in page.text_content("#message")
        assert "error" not in (page.get_attribute("#message", "class") or "")
        # A k above the service's limit: the page's own message; the old grid is gone.
        search(page, "blue", k=2)
        assert page.locator(".result").count() == 2
        max_k = get(served, "/api/info").json()["max_k"]
        page.fill("#k", str(max_k + 400))
        page.click("#search-btn")
        page.wait_for_selector("#message.error")
        assert f"from 1 to {max_k}" in page.text_content("#message")
        assert page.locator(".result").count() == 0
        assert page.evaluate("document.getElementById('k').checkValidity()") is False
        # A good k again clears the error.
        search(page, "blue", k=1)
        assert page.get_attribute("#message", "class") == ""
        assert page.locator(".result").count() == 1
        # An error from the API is shown in its own words; the old grid goes.
        rule = served.cloud.faults.add(
            FaultRule("bedrock", "ThrottlingException", "InvokeModel", match="green")
        )
        try:
            search(page, "green", k=1)
        finally:
            served.cloud.faults.remove(rule.id)
        assert "error" in (page.get_attribute("#message", "class") or "")
        assert page.locator(".result").count() == 0
        shot(page, "desktop-error")


@pytest.mark.browser
def test_an_image_search_can_be_refined_repeated_dropped_and_pasted(
    served: Served, browser: Any, tmp_path: Path
) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        query = tmp_path / "query.jpg"
        query.write_bytes(library(served.cloud)["photos/coffee.jpg"])
        page.fill("#k", "2")
        page.set_input_files("#file", str(query))
        wait_idle(page)
        page.wait_for_function("document.querySelectorAll('.result').length === 2")
        assert paths(page)[0].endswith("photos/coffee.jpg")
        assert paths(page)[1].endswith("photos/coffee-small.jpg")
        # The query image shows as a chip (thumbnail, name, remove button).
        assert page.is_visible("#chip")
        assert page.text_content("#chip-name") == "query.jpg"
        assert page.evaluate("document.getElementById('chip-img').naturalWidth") > 0
        assert "can't be kept in the page's address" in page.text_content("#message")
        # Changing k re-runs the image query (no "type something").
        page.fill("#k", "3")
        page.press("#k", "Enter")
        wait_idle(page)
        page.wait_for_function("document.querySelectorAll('.result').length === 3")
        assert paths(page)[0].endswith("photos/coffee.jpg")
        # The same file can be chosen again: a new request is sent.
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.set_input_files("#file", str(query))
        wait_idle(page)
        page.wait_for_function("document.querySelectorAll('.result').length === 3")
        assert len(posts) == 1
        # A drop anywhere on the page (here: the results heading area, not the drop zone).
        page.fill("#k", "1")
        green = colour_jpeg(COLOURS["green"], (48, 48))
        page.dispatch_event(
            "#message", "drop", {"dataTransfer": file_transfer(page, green, "green.jpg")}
        )
        wait_idle(page)
        page.wait_for_function(
            "document.querySelector('.result .path') && "
            "document.querySelector('.result .path').textContent.endsWith('colours/green.jpg')"
        )
        assert page.text_content("#chip-name") == "green.jpg"
        # Paste from the clipboard: a paste event carrying an image file.
        blue = colour_jpeg(COLOURS["blue"], (48, 48))
        page.evaluate(
            """(dt) => document.dispatchEvent(new ClipboardEvent('paste',
                {clipboardData: dt, bubbles: true}))""",
            file_transfer(page, blue, "pasted.jpg"),
        )
        wait_idle(page)
        page.wait_for_function(
            "document.querySelector('.result .path') && "
            "document.querySelector('.result .path').textContent.endsWith('colours/blue.jpg')"
        )
        # A file that is not an image: the server's words, and no grid.
        notes = tmp_path / "notes.jpg"
        notes.write_text("a text file with an image's name")
        page.set_input_files("#file", str(notes))
        wait_idle(page)
        page.wait_for_selector("#message.error")
        assert "not an image the model can search with" in page.text_content("#message")
        assert page.locator(".result").count() == 0
        # Remove: the chip goes and so does the query.
        page.click("#chip-remove")
        assert not page.is_visible("#chip")
        page.click("#search-btn")
        assert "Type something" in page.text_content("#message")
    assert_accounted(served.cloud)


# --------------------------------------------------------------------------- the viewer


@pytest.mark.browser
def test_a_result_opens_the_viewer_with_the_original_and_its_metadata(
    served: Served, browser: Any
) -> None:
    with open_page(browser, served) as opened:
        page, context = opened.page, opened.context
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        search(page, "blue", k=3)
        first = page.locator("#results .result .open").first
        first.click()
        page.wait_for_selector("#viewer[open]")
        page.wait_for_function(
            "document.getElementById('viewer-img').complete && "
            "document.getElementById('viewer-img').naturalWidth > 0"
        )
        assert "/original?" in (page.get_attribute("#viewer-img", "src") or "")
        meta = page.text_content("#viewer-meta") or ""
        top = paths(page)[0]
        for label in ("Path", "Size", "Dimensions", "Format", "ETag", "Ingested at", "Model"):
            assert label in meta, label
        assert top in meta
        assert "/original?" in (page.get_attribute("#viewer-open", "href") or "")
        assert page.get_attribute("#viewer-download", "download") is not None
        page.click("#viewer-copy")
        page.wait_for_function(
            "document.getElementById('viewer-note').textContent.startsWith('Copied')"
        )
        assert page.evaluate("navigator.clipboard.readText()") == top
        # The selected result is in the address.
        assert "open=" in page.url
        shot(page, "desktop-viewer", full_page=False)
        # Arrow keys: next, then back.
        page.keyboard.press("ArrowRight")
        assert paths(page)[1] in (page.text_content("#viewer-meta") or "")
        page.keyboard.press("ArrowLeft")
        assert top in (page.text_content("#viewer-meta") or "")
        page.keyboard.press("ArrowRight")
        # Esc closes, and focus returns to the result shown last.
        page.keyboard.press("Escape")
        page.wait_for_function("!document.getElementById('viewer').open")
        # The dialog's close event comes a task later: the browser first hands focus back
        # to where it was before the dialog opened (result 0), then the page moves it.
        page.wait_for_function(
            "document.activeElement && document.activeElement.closest('.result') && "
            "document.activeElement.closest('.result').dataset.index === '1'",
            timeout=5000,
        )
        assert "open=" not in page.url


@pytest.mark.browser
def test_more_like_this_uses_the_stored_vector_not_the_model(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "coffee", k=10)
        page.click("#weak-toggle")  # a text query for a photo: all weak with the stand-in model
        before = model_calls(served.cloud)
        card = page.locator(".result", has=page.locator(".path", has_text="photos/coffee.jpg"))
        card.locator(".like").first.click()
        wait_idle(page)
        page.wait_for_function(
            "document.getElementById('chip-name').textContent.startsWith('like ')"
        )
        wait_idle(page)
        # The closest other image is its half-size copy (the query image itself is left out).
        assert paths(page)[0] == uri(served, "photos/coffee-small.jpg"), paths(page)
        assert page.text_content("#chip-name") == "like " + uri(served, "photos/coffee.jpg")
        assert "like=" in page.url
        # From the viewer too.
        page.locator("#results .result .open").last.click()
        page.wait_for_selector("#viewer[open]")
        target = page.text_content("#viewer-title")
        page.click("#viewer-like")
        page.wait_for_function("!document.getElementById('viewer').open")
        wait_idle(page)
        assert (
            page.text_content("#chip-name")
            == f"like s3://{served.cloud.resources.source_bucket}/{target}"
        )
        assert paths(page) and uri(served, str(target)) not in paths(page), paths(page)
        assert model_calls(served.cloud) == before


# --------------------------------------------------------------------------- URL state


@pytest.mark.browser
def test_the_address_brings_the_same_view_back(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        search(page, "red", k=3)
        page.fill("#folder", "colours/")
        page.press("#folder", "Enter")
        wait_idle(page)
        red_paths = paths(page)
        assert all("/colours/" in p for p in red_paths)
        search(page, "blue", k=2)
        page.locator("#results .result .open").first.click()
        page.wait_for_selector("#viewer[open]")
        shared = page.url
        assert "text=blue" in shared and "prefix=colours" in shared and "open=" in shared
        page.keyboard.press("Escape")
        # Back: red's view again (its query, filters and grid).
        page.go_back()
        page.wait_for_function("document.getElementById('text').value === 'red'")
        wait_idle(page)
        assert paths(page) == red_paths
        assert page.input_value("#folder") == "colours/"
        # Reload keeps it.
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.input_value("#text") == "red"
        assert paths(page) == red_paths
    # A shared link, in a new browser context: the same query and the viewer open.
    path = shared.removeprefix(served.url)
    with open_page(browser, served, path) as opened:
        page = opened.page
        page.wait_for_selector("#viewer[open]")
        assert page.input_value("#text") == "blue"
        assert paths(page)[0] == uri(served, "colours/blue.jpg")
        assert uri(served, "colours/blue.jpg") in (page.text_content("#viewer-meta") or "")


# --------------------------------------------------------------------------- keyboard


@pytest.mark.browser
def test_the_page_works_from_the_keyboard(served: Served, browser: Any) -> None:
    with open_page(browser, served) as opened:
        page = opened.page
        page.focus("#text")
        page.keyboard.type("blue")
        page.keyboard.press("Enter")
        wait_idle(page)
        assert page.locator(".result").count() > 1
        # Tab order reaches the picker button and the drop zone, then the results.
        seen: list[str] = []
        for _ in range(30):
            page.keyboard.press("Tab")
            seen.append(
                page.evaluate(
                    "document.activeElement.id || document.activeElement.className || "
                    "document.activeElement.tagName"
                )
            )
            if seen[-1] == "open":
                break
        assert "drop" in seen and "pick" in seen and seen[-1] == "open"
        # The picker opens the file chooser from the keyboard.
        with page.expect_file_chooser() as chooser:
            page.focus("#pick")
            page.keyboard.press("Enter")
        assert chooser.value is not None
        # Arrow keys move between results; Enter opens the viewer.
        page.focus("#results .result .open")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.closest('.result').dataset.index") == "1"
        page.keyboard.press("Enter")
        page.wait_for_selector("#viewer[open]")
        page.keyboard.press("Escape")
        page.wait_for_function("!document.getElementById('viewer').open")
        page.wait_for_function(  # after the dialog's close event (a task later)
            "document.activeElement && document.activeElement.closest('.result') && "
            "document.activeElement.closest('.result').dataset.index === '1'",
            timeout=5000,
        )
        # Focus is visible: the focused result button has an outline.
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", "")


def test_page_assets_are_self_contained(served: Served) -> None:
    """No front-end build and no third-party URLs: the page works offline."""
    html = get(served, "/").text
    static = REPO / "scripts" / "web" / "static"
    for f in static.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f.name
    for name in ("app.js", "app.css"):
        assert f"/static/{name}" in html
        assert get(served, f"/static/{name}").status_code == 200
