"""``imgsearch serve``'s newer API: like, filters, grouping, thumbnails, originals, folders,
the cached status, info and the failure list, on a seeded local cloud.

This module adds to its own seeded cloud: a copy of a colour in a nested folder, an exact
duplicate, and an object that is not an image (the embedder records a permanent failure).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from PIL import Image

from imgsearch.limits import LIMITS
from scripts.common.cli import Clients
from scripts.imgsearch.commands.serve import web_context
from scripts.imgsearch.context import Context
from scripts.imgsearch.parser import build_parser
from scripts.web.app import Access, WebContext, create_app
from tests.e2e.cli_harness import library, seeded_cloud
from tests.e2e.conftest import upload
from tests.e2e.web_harness import (
    API_HEADERS,
    Served,
    fetch,
    free_port,
    get,
    model_calls,
    post_image,
    requests_to,
    served,
)

pytestmark = pytest.mark.e2e
__all__ = ["seeded_cloud", "served"]

NESTED = "trips/2024/blue.jpg"
DUPLICATE = "colours/blue-copy.jpg"
BROKEN = "junk/broken.jpg"


@pytest.fixture(scope="module")
def extra(served: Served) -> Iterator[Served]:
    """The module's additions, uploaded once and run through the pipeline."""
    blue = library(served.cloud)["colours/blue.jpg"]
    upload(served.cloud, NESTED, blue)
    upload(served.cloud, DUPLICATE, blue)
    upload(served.cloud, BROKEN, b"\xff\xd8\xff not really a jpeg " * 10)
    served.cloud.wait_idle(90)
    yield served


def source(served: Served) -> str:
    return served.cloud.resources.source_bucket


def keys(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["key"] for r in response.json()["results"]]


# --------------------------------------------------------------------------- searches


def test_like_uses_the_stored_vector_and_no_model_call(extra: Served) -> None:
    before = model_calls(extra.cloud)
    uri = f"s3://{source(extra)}/photos/astronaut.jpg"
    response = get(extra, "/api/search/like", uri=uri, k=1)
    assert keys(response) == ["photos/astronaut-small.jpg"]  # itself left out
    assert response.json()["query"]["like"] == uri
    assert model_calls(extra.cloud) == before
    missing = get(extra, "/api/search/like", uri=f"s3://{source(extra)}/photos/nope.jpg")
    # The core's ResourceNotFound answers its own 404 (the search API's answer too).
    assert missing.status_code == 404 and "no stored vector" in missing.json()["error"]
    assert get(extra, "/api/search/like").json()["error"].startswith("uri is missing")


def test_prefix_is_a_subtree_folder_is_exact_and_format_and_sizes_filter(extra: Served) -> None:
    assert keys(get(extra, "/api/search", text="blue", k=20, prefix="trips")) == [NESTED]
    assert keys(get(extra, "/api/search", text="blue", k=20, prefix="/trips/2024/")) == [NESTED]
    s3_form = get(extra, "/api/search", text="blue", k=20, prefix=f"s3://{source(extra)}/trips")
    assert keys(s3_form) == [NESTED]
    assert keys(get(extra, "/api/search", text="blue", k=20, folder="trips")) == []
    nested_folder = NESTED.rsplit("/", 1)[0]
    assert keys(get(extra, "/api/search", text="blue", k=20, folder=nested_folder)) == [NESTED]
    assert keys(get(extra, "/api/search", text="red", k=20, format="png")) == [
        "colours/red-wide.png"
    ]
    small = {k: len(v) for k, v in library(extra.cloud).items() if len(v) <= 1500}
    found = keys(get(extra, "/api/search", text="red", k=50, max_bytes=1500, prefix="colours"))
    assert found and set(found) <= set(small) | {DUPLICATE}


def test_since_and_until_filter_on_modified_epoch(extra: Served) -> None:
    response = get(extra, "/api/search", text="blue", k=50, since="2024-05-01", until="2024-05-31")
    assert response.status_code == 200, response.text
    start = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp()) - 1
    assert response.json()["query"]["filter"] == {"modified_epoch": {"$gte": start, "$lte": end}}
    assert response.json()["results"] == []  # everything was uploaded today
    today = datetime.now(UTC).date().isoformat()
    assert "colours/blue.jpg" in keys(get(extra, "/api/search", text="blue", k=50, since=today))


def test_max_distance_marks_weak_matches_and_group_folds_copies(extra: Served) -> None:
    weak = get(extra, "/api/search", text="blue", k=3, max_distance="0").json()
    assert weak["query"]["max_distance"] == 0 and all(r["weak"] for r in weak["results"])
    plain = keys(get(extra, "/api/search", text="blue", k=3))
    assert {"colours/blue.jpg", DUPLICATE} <= set(plain)
    grouped = get(extra, "/api/search", text="blue", k=3, group=1).json()
    assert grouped["query"]["grouped_duplicates"] is True
    first = grouped["results"][0]
    assert len(first["copies"]) == 2  # the copy and the nested one: one image
    assert [r["key"] for r in grouped["results"]].count("colours/blue.jpg") <= 1


def test_image_search_takes_the_common_params(extra: Served) -> None:
    data = library(extra.cloud)["photos/astronaut.jpg"]
    assert keys(post_image(extra, data, k=1, prefix="colours", format="png")) == [
        "colours/red-wide.png"
    ]
    bad = post_image(extra, data, k=1, since="yesterday")
    assert bad.status_code == 400 and bad.json()["error"].startswith("since 'yesterday'")


def test_every_result_keeps_its_fields_and_gains_thumbnail_and_original(extra: Served) -> None:
    answer = get(extra, "/api/search", text="red", k=2).json()
    assert set(answer) == {"query", "results"}
    item = answer["results"][0]
    for name in ("rank", "vector_key", "distance", "uri", "bucket", "key", "size", "width",
                 "height", "format", "dimensions", "metadata", "weak", "copies"):  # fmt: skip
        assert name in item, name
    where = urlencode({"bucket": item["bucket"], "key": item["key"]})
    assert item["original"] == f"/original?{where}"
    assert item["thumbnail"] == f"/thumb?{where}&etag={item['metadata']['etag']}"


# --------------------------------------------------------------------------- thumbnails


def thumb_url(served: Served, key: str, bucket: str | None = None) -> str:
    return "/thumb?" + urlencode({"bucket": bucket or source(served), "key": key})


def test_thumbnails_are_small_cached_and_immutable(extra: Served) -> None:
    item = get(extra, "/api/search", text="red", k=1, format="png").json()["results"][0]
    gets = requests_to(extra.cloud, "s3")
    first = fetch(extra, item["thumbnail"])
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "private, max-age=86400, immutable"
    assert first.headers["x-thumb-cache"] == "miss"
    assert Image.open(io.BytesIO(first.content)).size == (300, 40)
    after_first = requests_to(extra.cloud, "s3")
    assert after_first > gets
    second = fetch(extra, item["thumbnail"])
    assert second.headers["x-thumb-cache"] == "hit" and second.content == first.content
    assert requests_to(extra.cloud, "s3") == after_first  # no download
    assert list(extra.thumb_cache.glob("*.thumb"))


def test_thumbnail_refusals(extra: Served) -> None:
    other = fetch(extra, thumb_url(extra, "photos/coffee.jpg", bucket="someone-else"))
    assert (
        other.status_code == 403 and "not the deployment's source bucket" in other.json()["error"]
    )
    gone = fetch(extra, thumb_url(extra, "photos/nope.jpg"))
    assert gone.status_code == 404 and "no such object" in gone.json()["error"]
    junk = fetch(extra, thumb_url(extra, BROKEN))
    assert junk.status_code == 415 and "\n" not in junk.json()["error"]
    assert fetch(extra, "/thumb?key=a.jpg").json()["error"].startswith("bucket is missing")
    for site in ("cross-site", "same-site"):
        for path in (thumb_url(extra, "photos/coffee.jpg"), "/original?bucket=b&key=k"):
            refused = fetch(extra, path, **{"Sec-Fetch-Site": site})
            assert refused.status_code == 403, (site, path)
    port = extra.url.rsplit(":", 1)[1]
    foreign = fetch(extra, thumb_url(extra, "photos/coffee.jpg"), Host=f"evil.example:{port}")
    assert foreign.status_code == 403


def test_original_redirects_to_a_fresh_presigned_url(extra: Served) -> None:
    path = "/original?" + urlencode({"bucket": source(extra), "key": "photos/coffee.jpg"})
    one = fetch(extra, path, **{"Sec-Fetch-Site": "same-origin"})
    assert one.status_code == 307
    assert (
        httpx.get(one.headers["location"], timeout=30).content
        == (library(extra.cloud)["photos/coffee.jpg"])
    )
    other = fetch(extra, "/original?" + urlencode({"bucket": "elsewhere", "key": "a.jpg"}))
    assert other.status_code == 403


def test_static_files_are_served_behind_the_same_guard(extra: Served) -> None:
    page = fetch(extra, "/static/index.html")
    assert page.status_code == 200 and "<title>imgsearch</title>" in page.text
    assert fetch(extra, "/static/nope.js").status_code == 404
    assert fetch(extra, "/static/../app.py").status_code == 404
    port = extra.url.rsplit(":", 1)[1]
    assert fetch(extra, "/static/index.html", Host=f"evil.example:{port}").status_code == 403


# --------------------------------------------------------------------------- the rest


def test_folders_lists_direct_subfolders_from_s3(extra: Served) -> None:
    top = get(extra, "/api/folders").json()
    assert top["under"] == "" and top["truncated"] is False
    assert {"colours/", "photos/", "trips/", "junk/"} <= set(top["folders"])
    assert get(extra, "/api/folders", under="trips").json() == {
        "under": "trips/",
        "folders": ["trips/2024/"],
        "truncated": False,
    }
    assert get(extra, "/api/folders", under="photos/").json()["folders"] == []
    bad = get(extra, "/api/folders", under="a/../b")
    assert bad.status_code == 400 and bad.json()["error"].startswith("under:")


def test_status_is_fetched_once_per_minute_for_every_tab(extra: Served) -> None:
    first = get(extra, "/api/status").json()
    assert first["stale"] is False and first["fetched_at"].endswith("Z")
    calls = requests_to(extra.cloud, "monitoring")
    second = get(extra, "/api/status").json()
    assert second["fetched_at"] == first["fetched_at"]
    assert requests_to(extra.cloud, "monitoring") == calls


def test_info_tells_the_page_its_settings(extra: Served) -> None:
    info = get(extra, "/api/info").json()
    model = extra.cloud.cfg.model
    assert info["status_poll_seconds"] == 60 and info["presign_seconds"] == 300
    assert info["max_distance"] == {
        "text": model.text_max_distance,
        "image": model.image_max_distance,
    }
    assert info["source_bucket"] == source(extra) and info["max_k"] == LIMITS.query_top_k_max


def test_failures_list_the_recorded_permanent_failure(extra: Served) -> None:
    answer = get(extra, "/api/failures")
    assert answer.status_code == 200, answer.text
    failures = answer.json()["failures"]
    broken = [f for f in failures if f["uri"] == f"s3://{source(extra)}/{BROKEN}"]
    assert broken, answer.json()
    assert broken[0]["where"] == "failure log" and broken[0]["reason"] and broken[0]["at"]
    assert all(f["uri"] and "colours/" not in f["uri"] for f in failures)
    assert answer.json()["truncated"] is False


def test_status_answers_the_last_figures_marked_stale_when_the_cloud_goes(
    extra: Served,
) -> None:
    from starlette.testclient import TestClient

    with extra.cloud.environ():
        args = build_parser().parse_args(["serve", "--endpoint-url", extra.cloud.endpoint])
        web: WebContext = web_context(Context(args))
    with TestClient(create_app(web, Access(port=8123)), base_url="http://127.0.0.1:8123") as c:
        good = c.get("/api/status", headers=API_HEADERS).json()
        assert good["stale"] is False
        dead = f"http://127.0.0.1:{free_port()}"
        web.clients = Clients(web.clients.session, endpoint_url=dead)
        web.status().ttl = 0
        stale = c.get("/api/status", headers=API_HEADERS)
    assert stale.status_code == 200
    body = stale.json()
    assert body["stale"] is True and body["fetched_at"] == good["fetched_at"]
    assert body["queue"] == good["queue"]
    # The words name the deployment's endpoint (the one the app was made for).
    assert body["error"].startswith("Can't reach SQS / CloudWatch at http://")


def test_serve_refuses_a_thumbnail_cache_bound_below_one_mb(extra: Served) -> None:
    from tests.e2e.cli_harness import run_process

    run = run_process(extra.cloud.env, "serve", "--port", "0", "--thumb-cache-mb", "0")
    run.one_line_error("--thumb-cache-mb 0")
