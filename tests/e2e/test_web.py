"""``imgsearch serve``: the JSON API (the page itself: test_web_page.py).

The server is the production app (:func:`scripts.web.app.create_app`) on 127.0.0.1,
pointed at a seeded local cloud exactly as ``imgsearch serve --endpoint-url ...`` would
be. The browser test drives Debian's ``/usr/bin/chromium`` with Playwright (no browser
download) and checks what a user sees: thumbnails that really load, distances, paths,
the prefix filter, the drop zone and the status panel.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imgsearch.limits import LIMITS
from scripts.imgsearch.commands.serve import web_context
from scripts.imgsearch.context import Context
from scripts.imgsearch.parser import build_parser
from scripts.web.app import PRESIGN_SECONDS, Access, WebContext, create_app
from tests.e2e.cli_harness import library, run_process, seeded_cloud
from tests.e2e.web_harness import (
    API_HEADERS,
    Served,
    fetch,
    free_port,
    get,
    model_calls,
    post_image,
    served,
)

pytestmark = pytest.mark.e2e
__all__ = ["seeded_cloud", "served"]


def test_text_search_api_returns_thumbnails_that_load(served: Served) -> None:
    response = get(served, "/api/search", text="blue", k=2)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["key"] == "colours/blue.jpg"
    assert results[0]["distance"] <= results[1]["distance"]
    assert results[0]["thumbnail"].startswith("/thumb?")  # same origin, not a presigned URL
    image = fetch(served, results[0]["thumbnail"])
    assert image.status_code == 200, image.text
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (96, 64)  # small: not enlarged
    original = fetch(served, results[0]["original"])
    assert original.status_code == 307
    assert "X-Amz-Signature=" in original.headers["location"]  # SigV4 presigned
    assert (
        httpx.get(original.headers["location"], timeout=30).content
        == (library(served.cloud)["colours/blue.jpg"])
    )


def test_image_upload_api_and_prefix_filter(served: Served) -> None:
    data = library(served.cloud)["photos/astronaut.jpg"]
    response = post_image(served, data, k=2, name="query.jpg")
    assert response.status_code == 200, response.text
    keys = [r["key"] for r in response.json()["results"]]
    assert keys == ["photos/astronaut.jpg", "photos/astronaut-small.jpg"]

    response = get(served, "/api/search", text="red", k=20, prefix="colours")
    keys = [r["key"] for r in response.json()["results"]]
    assert sorted(keys) == sorted(k for k in library(served.cloud) if k.startswith("colours/"))


def test_api_errors_are_json_one_liners(served: Served) -> None:
    for params, fragment in (
        (
            {"text": "x", "k": LIMITS.query_top_k_max + 1},
            f"k {LIMITS.query_top_k_max + 1}: use 1..",
        ),
        ({"text": "x", "k": "many"}, "whole number"),
        ({"text": ""}, "the query is empty: type what to look for"),
        ({"text": "x", "filter": "{oops"}, "not valid JSON"),
    ):
        response = get(served, "/api/search", **params)
        assert response.status_code == 400, params
        assert fragment in response.json()["error"]
        assert "--" not in response.json()["error"]  # the page has no CLI flags
    bad = post_image(served, b"GIF89a-not-really").json()
    assert "not an image the model can search with" in bad["error"]
    too_big = post_image(served, b"\xff" * (served.cloud.cfg.model.max_inline_image_bytes + 1))
    assert too_big.status_code == 413
    assert post_image(served, b"").status_code == 400


def test_status_and_info_api(served: Served) -> None:
    status = get(served, "/api/status").json()
    assert status["queue"]["total"] == 0 and status["dlq"]["total"] == 0
    assert status["last_hour"]["ImagesEmbedded"] == len(library(served.cloud))
    info = get(served, "/api/info").json()
    assert info["index"] == served.cloud.cfg.index_name and info["max_k"] == LIMITS.query_top_k_max
    page = get(served, "/")
    assert page.status_code == 200 and "<title>imgsearch</title>" in page.text


def test_serve_command_starts_and_answers(served: Served, tmp_path: Path) -> None:
    """The real ``imgsearch serve`` process, then a bad port as a one-line error."""
    import subprocess
    import sys

    from tests.e2e.cli_harness import REPO, clean_env

    port = free_port()
    env = {**clean_env(), **served.cloud.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.imgsearch.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                info = httpx.get(
                    f"http://127.0.0.1:{port}/api/info", headers=API_HEADERS, timeout=5
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "imgsearch serve did not answer"
                time.sleep(0.2)
        assert info.json()["vector_bucket"] == served.cloud.resources.vector_bucket
        busy = run_process(served.cloud.env, "serve", "--port", str(port))
        busy.one_line_error(f"--port {port}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --------------------------------------------------------------------------- safety


def test_a_foreign_host_header_is_refused(served: Served) -> None:
    """DNS rebinding: a hostile name resolving to 127.0.0.1 must not read the answers."""
    port = served.url.rsplit(":", 1)[1]
    for path in ("/", "/api/info", "/api/status"):
        response = httpx.get(
            served.url + path, headers={**API_HEADERS, "Host": f"evil.example:{port}"}, timeout=30
        )
        assert response.status_code == 403, path
        assert "Host" in response.json()["error"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        ok = httpx.get(served.url + "/api/info", headers={**API_HEADERS, "Host": host}, timeout=30)
        assert ok.status_code == 200, host
        assert not any(h.lower().startswith("access-control-") for h in ok.headers)
    wrong_port = httpx.get(
        served.url + "/api/info", headers={**API_HEADERS, "Host": "127.0.0.1:1"}, timeout=30
    )
    assert wrong_port.status_code == 403


def test_cross_site_requests_make_no_model_call(served: Served) -> None:
    """An <img src=...> GET, a no-cors form POST, a header-less fetch: 403, no Bedrock call."""
    data = library(served.cloud)["photos/astronaut.jpg"]
    before = model_calls(served.cloud)
    img_get = httpx.get(
        served.url + "/api/search",
        params={"text": "red"},
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", **API_HEADERS},
        timeout=30,
    )
    form_post = httpx.post(
        served.url + "/api/search/image",
        content=data,
        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
        timeout=30,
    )
    foreign_origin = httpx.get(
        served.url + "/api/search",
        params={"text": "red"},
        headers={**API_HEADERS, "Origin": "http://localhost:1"},
        timeout=30,
    )
    no_header = httpx.get(served.url + "/api/search", params={"text": "red"}, timeout=30)
    no_header_post = httpx.post(
        served.url + "/api/search/image",
        content=data,
        headers={"Content-Type": "text/plain", "Sec-Fetch-Site": "same-origin"},
        timeout=30,
    )
    for response in (img_get, form_post, foreign_origin, no_header, no_header_post):
        assert response.status_code == 403, response.text
        assert "access-control-allow-origin" not in response.headers
    assert "X-Imgsearch" in no_header.json()["error"]
    assert model_calls(served.cloud) == before
    # The page's own requests (same origin, with the header) still work.
    own = get(served, "/api/search", text="red", k=1)
    assert own.status_code == 200, own.text
    assert model_calls(served.cloud) == before + 1


def test_presigned_urls_live_five_minutes(served: Served) -> None:
    assert PRESIGN_SECONDS == 300
    original = get(served, "/api/search", text="blue", k=1).json()["results"][0]["original"]
    location = fetch(served, original).headers["location"]
    assert "X-Amz-Expires=300&" in location + "&"


def test_favicon_is_served(served: Served) -> None:
    icon = httpx.get(served.url + "/favicon.ico", timeout=30)
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    assert icon.content.startswith(b"\x89PNG")


def _app_client(web: WebContext, access: Access) -> Any:
    from starlette.testclient import TestClient

    host = f"[{access.host}]" if ":" in access.host else access.host
    return TestClient(create_app(web, access), base_url=f"http://{host}:{access.port}")


def test_another_interface_needs_the_printed_token(served: Served) -> None:
    with served.cloud.environ():
        args = build_parser().parse_args(["serve", "--endpoint-url", served.cloud.endpoint])
        web = web_context(Context(args))
    access = Access(host="192.0.2.7", port=8123, token="s3cret-token")
    with _app_client(web, access) as client:
        for path in ("/", "/api/info"):
            refused = client.get(path, headers=API_HEADERS)
            assert refused.status_code == 403, path
            assert "token" in refused.json()["error"]
        assert client.get("/?token=wrong").status_code == 403
        visit = client.get("/?token=s3cret-token", follow_redirects=False)
        assert visit.status_code == 303 and visit.headers["location"] == "/"
        cookie = visit.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.get("/").status_code == 200  # the cookie is sent from now on
        assert client.get("/api/info", headers=API_HEADERS).status_code == 200
        foreign = client.get("/api/info", headers={**API_HEADERS, "Host": "evil.example:8123"})
        assert foreign.status_code == 403
    # A wildcard bind accepts any Host, but only with the token.
    with _app_client(web, Access(host="0.0.0.0", port=8123, token="t0k")) as client:
        assert client.get("/api/info", headers=API_HEADERS).status_code == 403
        assert (
            client.get("/api/info", headers={**API_HEADERS, "X-Imgsearch-Token": "t0k"}).status_code
            == 200
        )


def test_serve_on_another_interface_prints_a_token_url(served: Served) -> None:
    import subprocess
    import sys

    from tests.e2e.cli_harness import REPO, clean_env

    port = free_port()
    env = {**clean_env(), **served.cloud.env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.imgsearch.cli", "serve", "--host", "127.0.0.2",
         "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"http://127.0.0.2:{port}/?token=" in line, line
        url = line.split()[line.split().index("on") + 1]
        base = f"http://127.0.0.2:{port}"
        assert httpx.get(base + "/api/info", headers=API_HEADERS, timeout=10).status_code == 403
        with httpx.Client(timeout=10) as client:
            assert client.get(url, follow_redirects=True).status_code == 200
            assert client.get(base + "/api/info", headers=API_HEADERS).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_outage_answers_say_which_service_is_unreachable(served: Served) -> None:
    """Cloud down: 503 naming the service and endpoint, in words, never a CLI flag."""
    from scripts.common.cli import Clients

    dead = f"http://127.0.0.1:{free_port()}"
    with served.cloud.environ():
        args = build_parser().parse_args(["serve", "--endpoint-url", served.cloud.endpoint])
        live = web_context(Context(args))
        clients = Clients(live.clients.session, endpoint_url=dead)
        web = WebContext.for_deployment(
            live.cfg,
            clients,
            vector_bucket=live.vector_bucket,
            index_name=live.index_name,
            queue_url=lambda: served.cloud.resources.queue_url,
            dlq_url=lambda: served.cloud.resources.dlq_url,
        )
    with _app_client(web, Access(port=8123)) as client:
        search = client.get("/api/search", params={"text": "red"}, headers=API_HEADERS)
        assert search.status_code == 503
        assert search.json()["error"] == (
            f"Can't reach S3 Vectors / Bedrock at {dead} — is the local cloud running?"
        )
        status = client.get("/api/status", headers=API_HEADERS)
        assert status.status_code == 503
        assert f"Can't reach SQS / CloudWatch at {dead}" in status.json()["error"]
        for answer in (search, status):
            assert "--" not in answer.json()["error"]


# --------------------------------------------------------------------------- the browser
