"""``imgsearch serve``: the JSON API, and the page in a real browser (headless Chromium).

The server is the production app (:func:`scripts.web.app.create_app`) on 127.0.0.1,
pointed at a seeded local cloud exactly as ``imgsearch serve --endpoint-url ...`` would
be. The browser test drives Debian's ``/usr/bin/chromium`` with Playwright (no browser
download) and checks what a user sees: thumbnails that really load, distances, paths,
the prefix filter, the drop zone and the status panel.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from imgsearch.limits import LIMITS
from tests.e2e.cli_harness import COLOURS, library, seeded_cloud
from tests.e2e.conftest import assert_accounted
from tests.e2e.web_harness import Served, browser, get, served

pytestmark = pytest.mark.e2e
__all__ = ["browser", "seeded_cloud", "served"]


@pytest.mark.browser
def test_the_page_searches_and_shows_thumbnails(
    served: Served, browser: Any, tmp_path: Path
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(served.url + "/")
    page.wait_for_function("document.getElementById('info').textContent.startsWith('index ')")

    # Text search: the colour query puts the red images first, and every thumbnail loads.
    page.fill("#text", "red")
    page.fill("#k", "3")
    page.click("#search-btn")
    page.wait_for_selector(".result")
    paths = page.locator(".result .path").all_text_contents()
    bucket = served.cloud.resources.source_bucket
    assert set(paths[:2]) == {
        f"s3://{bucket}/colours/red.jpg",
        f"s3://{bucket}/colours/red-wide.png",
    }
    assert len(paths) == 3
    distances = page.locator(".result .distance").all_text_contents()
    assert all(d.startswith("distance ") for d in distances)
    _assert_thumbnails_loaded(page, 3)

    # Upload (file chooser): the photo and its half-size copy come first.
    query = tmp_path / "query.jpg"
    query.write_bytes(library(served.cloud)["photos/coffee.jpg"])
    page.fill("#k", "2")
    page.set_input_files("#file", str(query))
    page.wait_for_function(
        "document.querySelectorAll('.result').length === 2 && "
        "document.querySelector('.result .path').textContent.endsWith('photos/coffee.jpg')"
    )
    assert page.locator(".result .path").all_text_contents()[1].endswith("photos/coffee-small.jpg")
    _assert_thumbnails_loaded(page, 2)

    # Drag and drop an image onto the drop zone, with the prefix filter on colours/.
    page.fill("#prefix", "colours/")
    page.fill("#k", "1")
    data = base64.b64encode(_green_jpeg()).decode()
    transfer = page.evaluate_handle(
        """(b64) => {
            const bin = atob(b64); const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "green.jpg", {type: "image/jpeg"}));
            return dt;
        }""",
        data,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_function(
        "document.querySelectorAll('.result').length === 1 && "
        "document.querySelector('.result .path').textContent.endsWith('colours/green.jpg')"
    )
    _assert_thumbnails_loaded(page, 1)

    # An error from the API is shown, not swallowed; the status panel shows the pipeline.
    notes = tmp_path / "notes.jpg"
    notes.write_text("a text file with an image's name")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#message.error")
    assert "not an image the model can search with" in page.text_content("#message")
    assert page.locator(".result").count() == 0
    # The browser itself refuses a k above the service's limit (max from /api/info).
    page.fill("#k", str(LIMITS.query_top_k_max + 1))
    assert page.evaluate("document.getElementById('k').checkValidity()") is False
    page.wait_for_selector("#status dd[data-field='DLQ']")
    assert page.text_content("#status dd[data-field='DLQ']") == "0"
    embedded = page.text_content("#status dd[data-field='embedded (1 h)']")
    assert embedded == str(len(library(served.cloud)))
    assert errors == []
    assert missing == []  # the favicon too
    page.close()
    assert_accounted(served.cloud)


def _green_jpeg() -> bytes:
    from tests.e2e.cli_harness import colour_jpeg

    return colour_jpeg(COLOURS["green"], (48, 48))


def _assert_thumbnails_loaded(page: Any, count: int) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('.result img.thumb')].length === {count} && "
        "[...document.querySelectorAll('.result img.thumb')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=20_000,
    )


def test_page_assets_are_self_contained(served: Served) -> None:
    """No front-end build and no third-party URLs: the page works offline."""
    html = get(served, "/").text
    assert "<script src=" not in html and "http://" not in html and "https://" not in html
    assert "<link " not in html  # no external stylesheet either
