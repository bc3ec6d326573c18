"""``imgsearch serve --api``: the page's searches go through the deployed search API.

Two servers on one seeded local cloud, the direct one (Bedrock and S3 Vectors with the
operator's credentials) and one started with ``--api``: the same text, image and like
searches give the same keys, the local HTTP API (SigV4-checked) counts every query the
API-mode page sent, and the API's refusals come back as the page's ``{"error": ...}``
with the API's status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from localcloud.cloud import LocalCloud
from localcloud.services.http_api import HttpApi
from scripts.web.failures import NO_VECTOR_CHECK
from tests.e2e.cli_harness import colour_jpeg
from tests.e2e.test_search_api import api_cloud
from tests.e2e.web_harness import API_HEADERS, Served, fetch, free_port, get, post_image, serving

pytestmark = pytest.mark.e2e
__all__ = ["api_cloud"]


@dataclass
class Pair:
    direct: Served
    api: Served


@pytest.fixture(scope="module")
def pair(api_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    cache = tmp_path_factory.mktemp("thumbs")
    with serving(api_cloud, cache) as direct, serving(api_cloud, cache, "--api") as api:
        yield Pair(direct, api)


def http_api(cloud: LocalCloud) -> HttpApi:
    found = cloud.runtime.search_api if cloud.runtime else None
    assert found is not None, "the local cloud runs no search API"
    return found


def answered(cloud: LocalCloud) -> int:
    """Every answer the local HTTP API gave, whatever its status."""
    return sum(http_api(cloud).answered.values())


def keys(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["key"] for r in response.json()["results"]]


def test_text_image_and_like_give_the_direct_modes_keys(pair: Pair) -> None:
    cloud = pair.api.cloud
    like = f"s3://{cloud.resources.source_bucket}/photos/astronaut.jpg"
    red = colour_jpeg((220, 20, 20))
    asks: list[Callable[[Served], httpx.Response]] = [
        lambda s: get(s, "/api/search", text="blue", k=3),
        lambda s: post_image(s, red, k=3),
        lambda s: get(s, "/api/search/like", uri=like, k=2),
        lambda s: get(s, "/api/search", text="red", k=4, group=1, prefix="colours/"),
    ]
    get(pair.api, "/api/info")  # the API's /health, asked once and kept
    before = answered(cloud)
    through_api = [ask(pair.api) for ask in asks]
    assert answered(cloud) == before + len(asks)  # every query went through the endpoint
    direct = [ask(pair.direct) for ask in asks]
    assert answered(cloud) == before + len(asks)  # and the direct page used none
    for api_answer, direct_answer in zip(through_api, direct, strict=True):
        assert keys(api_answer) == keys(direct_answer) and keys(api_answer)
    assert keys(through_api[0])[0] == "colours/blue.jpg"
    assert keys(through_api[1])[0].startswith("colours/red")
    assert "photos/astronaut.jpg" not in keys(through_api[2])  # itself left out, as direct
    assert through_api[3].json()["query"]["grouped_duplicates"] is True


def test_thumbnails_and_originals_are_the_servers_own_links(pair: Pair) -> None:
    hit = get(pair.api, "/api/search", text="green", k=1).json()["results"][0]
    assert hit["thumbnail"].startswith("/thumb?") and hit["original"].startswith("/original?")
    thumb = fetch(pair.api, hit["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert fetch(pair.api, hit["original"]).status_code == 307


def test_info_comes_from_the_apis_health(pair: Pair) -> None:
    cloud = pair.api.cloud
    info = get(pair.api, "/api/info").json()
    assert info["search_api"] == cloud.resources.search_api_url
    assert (info["index"], info["dimension"]) == (cloud.resources.index_name, cloud.cfg.dimension)
    assert info["model_id"] == cloud.cfg.model_id
    direct = get(pair.direct, "/api/info").json()
    assert direct["search_api"] is None
    same = ("index", "vector_bucket", "dimension", "model_id", "max_k", "default_k")
    assert {name: info[name] for name in same} == {name: direct[name] for name in same}
    assert info["max_image_bytes"] <= direct["max_image_bytes"]  # the API's payload limit


def test_the_apis_refusals_are_the_pages_errors(pair: Pair) -> None:
    cloud = pair.api.cloud
    missing = f"s3://{cloud.resources.source_bucket}/photos/nope.jpg"
    response = get(pair.api, "/api/search/like", uri=missing)
    assert response.status_code == 404, response.text
    assert response.json()["error"].startswith("search API 404 not_found")
    other = get(pair.api, "/api/search/like", uri="s3://someone-else/cat.jpg")
    assert other.status_code == 403 and "bucket_not_allowed" in other.json()["error"]
    throttle = http_api(cloud).throttle
    rate, burst = throttle.rate, throttle.burst
    throttle.configure(rate=0.001, burst=1)  # one request, then none for 1,000 s
    try:
        assert get(pair.api, "/api/search", text="blue", k=1).status_code == 200
        throttled = get(pair.api, "/api/search", text="blue", k=1)
    finally:
        throttle.configure(rate, burst)
    assert throttled.status_code == 429
    assert throttled.json() == {
        "error": "search API 429 Too Many Requests: throttled (search_throttle_rate/_burst): "
        "try again shortly"
    }


def test_an_unreachable_api_is_503_naming_it(
    api_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    cache = tmp_path_factory.mktemp("thumbs")
    with serving(api_cloud, cache, "--api-url", nowhere) as page:
        response = get(page, "/api/search", text="blue")
    assert response.status_code == 503, response.text
    assert response.json()["error"].startswith(f"Can't reach the search API at {nowhere}")


def test_failures_skip_the_vector_check_and_say_so(pair: Pair) -> None:
    response = httpx.get(pair.api.url + "/api/failures", headers=API_HEADERS, timeout=60)
    assert response.status_code == 200, response.text
    assert NO_VECTOR_CHECK in response.json()["notes"]
    direct = httpx.get(pair.direct.url + "/api/failures", headers=API_HEADERS, timeout=60)
    assert NO_VECTOR_CHECK not in direct.json()["notes"]
