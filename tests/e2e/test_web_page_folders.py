"""The search page's folder picker, filters and "+N copies" badge, on nested folders.

This module's own seeded cloud gets extra images under ``trips/`` (a module-scoped
fixture), so other modules' clouds and counts are untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from localcloud.cloud import LocalCloud
from localcloud.samples import encode
from tests.e2e.cli_harness import colour_jpeg, library, seeded_cloud
from tests.e2e.conftest import upload
from tests.e2e.test_web_page import open_page, paths, search, wait_idle
from tests.e2e.web_harness import Served, browser, served

pytestmark = pytest.mark.e2e
__all__ = ["browser", "seeded_cloud", "served"]

TRIPS: dict[str, bytes] = {
    "trips/2024/05/lake.jpg": colour_jpeg((30, 60, 200), (80, 60)),
    "trips/2024/06/sea.png": encode(Image.new("RGB", (70, 50), (10, 30, 240)), "PNG"),
    "trips/2023/sky.jpg": colour_jpeg((60, 90, 230), (900, 700)),
}


@pytest.fixture(scope="module")
def trips(served: Served) -> Served:
    """The served cloud with trips/ images and an identical copy of colours/blue.jpg."""
    cloud: LocalCloud = served.cloud
    for key, data in TRIPS.items():
        upload(cloud, key, data)
    upload(cloud, "trips/2024/05/blue-copy.jpg", library(cloud)["colours/blue.jpg"])
    cloud.wait_idle(90)
    return served


def all_paths(page: Any) -> list[str]:
    return paths(page) + paths(page, "#weak-results")


def filter_by(page: Any, field: str, value: str) -> None:
    if field == "format":
        page.select_option("#format", value)
    else:
        page.fill(f"#{field}", value)
        page.press(f"#{field}", "Enter")
    wait_idle(page)


@pytest.mark.browser
def test_the_folder_field_completes_from_the_bucket(trips: Served, browser: Any) -> None:
    bucket = trips.cloud.resources.source_bucket
    with open_page(browser, trips) as opened:
        page = opened.page
        page.focus("#folder")
        page.wait_for_function("document.querySelectorAll('#folder-list option').length > 0")
        top = page.eval_on_selector_all("#folder-list option", "os => os.map(o => o.value)")
        assert {"colours/", "photos/", "trips/"} <= set(top)
        page.fill("#folder", f"s3://{bucket}/trips/2024/")
        page.wait_for_function(
            "[...document.querySelectorAll('#folder-list option')]"
            ".some(o => o.value === 'trips/2024/05/')"
        )
        below = page.eval_on_selector_all("#folder-list option", "os => os.map(o => o.value)")
        assert set(below) == {"trips/2024/05/", "trips/2024/06/"}


@pytest.mark.browser
def test_a_folder_means_that_folder_and_everything_below(trips: Served, browser: Any) -> None:
    bucket = trips.cloud.resources.source_bucket
    with open_page(browser, trips) as opened:
        page = opened.page
        search(page, "blue", k=30)
        filter_by(page, "folder", "trips/")
        found = all_paths(page)
        assert {p.split(f"s3://{bucket}/")[1] for p in found} >= set(TRIPS)
        assert all(p.startswith(f"s3://{bucket}/trips/") for p in found)
        filter_by(page, "folder", "/trips/2024/")
        found = all_paths(page)
        assert found and all(p.startswith(f"s3://{bucket}/trips/2024/") for p in found)
        assert not any("/2023/" in p for p in found)
        filter_by(page, "folder", f"s3://{bucket}/trips/2024/06/")
        assert all_paths(page) == [f"s3://{bucket}/trips/2024/06/sea.png"]
        assert "prefix=" in page.url


@pytest.mark.browser
def test_format_size_and_date_filters(trips: Served, browser: Any) -> None:
    bucket = trips.cloud.resources.source_bucket
    today = datetime.now(UTC).date()
    with open_page(browser, trips) as opened:
        page = opened.page
        search(page, "blue", k=30)
        everything = all_paths(page)
        filter_by(page, "format", "png")
        assert all_paths(page) and all(p.endswith(".png") for p in all_paths(page))
        filter_by(page, "format", "")
        # Size: only the 900x700 sky is above 2 KB among the colours.
        filter_by(page, "folder", "trips/")
        filter_by(page, "min_kb", "2")
        assert all_paths(page) == [f"s3://{bucket}/trips/2023/sky.jpg"]
        filter_by(page, "min_kb", "")
        filter_by(page, "max_kb", "2")
        assert f"s3://{bucket}/trips/2023/sky.jpg" not in all_paths(page)
        filter_by(page, "max_kb", "")
        # Dates: everything was written today (UTC).
        filter_by(page, "since", str(today))
        assert set(all_paths(page)) == {p for p in everything if "/trips/" in p}
        filter_by(page, "since", str(today + timedelta(days=1)))
        assert all_paths(page) == []
        assert page.text_content("#message") == "No images match the filters."
        filter_by(page, "since", "")
        filter_by(page, "until", str(today - timedelta(days=1)))
        assert all_paths(page) == []
        # A bad size is the page's own message, and the grid goes.
        filter_by(page, "until", "")
        filter_by(page, "min_kb", "-3")
        assert "Min size" in page.text_content("#message.error")
        assert all_paths(page) == []


@pytest.mark.browser
def test_identical_copies_show_as_one_card_with_a_badge(trips: Served, browser: Any) -> None:
    bucket = trips.cloud.resources.source_bucket
    with open_page(browser, trips) as opened:
        page = opened.page
        search(page, "blue", k=8)
        card = page.locator(
            "#results .result",
            has=page.locator(".path", has_text="/blue"),
        ).first
        assert card.locator(".copies").text_content() == "+1 copy"
        shown = card.locator(".path").text_content()
        copies = card.locator(".copies").get_attribute("title")
        assert {shown, copies} == {
            f"s3://{bucket}/colours/blue.jpg",
            f"s3://{bucket}/trips/2024/05/blue-copy.jpg",
        }
