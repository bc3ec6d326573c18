"""``imgsearch serve``: the JSON API, and the page in a real browser (headless Chromium).

The server is the production app (:func:`scripts.web.app.create_app`) on 127.0.0.1,
pointed at a seeded local cloud exactly as ``imgsearch serve --endpoint-url ...`` would
be. The browser test drives Debian's ``/usr/bin/chromium`` with Playwright (no browser
download) and checks what a user sees: thumbnails that really load, distances, paths,
the prefix filter, the drop zone and the status panel.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from imgsearch.limits import LIMITS
from localcloud.cloud import LocalCloud
from scripts.imgsearch.commands.serve import web_context
from scripts.imgsearch.context import Context
from scripts.imgsearch.parser import build_parser
from scripts.web.app import PRESIGN_SECONDS, Access, WebContext, create_app
from tests.e2e.cli_harness import COLOURS, library, run_process, seeded_cloud
from tests.e2e.conftest import assert_accounted

pytestmark = pytest.mark.e2e
__all__ = ["seeded_cloud"]

# Debian's package (installed by `make install`); elsewhere point IMGSEARCH_CHROMIUM at a
# Chromium or Chrome binary.
CHROMIUM = os.environ.get("IMGSEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    cloud: LocalCloud
    url: str


@pytest.fixture(scope="module")
def served(seeded_cloud: LocalCloud) -> Iterator[Served]:
    with seeded_cloud.environ():
        args = build_parser().parse_args(["serve", "--endpoint-url", seeded_cloud.endpoint])
        port = free_port()
        app = create_app(web_context(Context(args)), Access(port=port))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)
        try:
            yield Served(seeded_cloud, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)


API_HEADERS = {"X-Imgsearch": "1"}
"""What the page's own fetch calls send: a custom header, so a browser preflights."""


def _get(served: Served, path: str, **params: Any) -> httpx.Response:
    return httpx.get(served.url + path, params=params, headers=API_HEADERS, timeout=60)


def _post_image(served: Served, content: bytes, **params: Any) -> httpx.Response:
    return httpx.post(
        served.url + "/api/search/image",
        params=params,
        content=content,
        headers={**API_HEADERS, "Content-Type": "image/jpeg"},
        timeout=60,
    )


def _model_calls(cloud: LocalCloud) -> int:
    return dict(cloud.front.requests).get("bedrock:InvokeModel", 0)


# --------------------------------------------------------------------------- the API


def test_text_search_api_returns_thumbnails_that_load(served: Served) -> None:
    response = _get(served, "/api/search", text="blue", k=2)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["key"] == "colours/blue.jpg"
    assert results[0]["distance"] <= results[1]["distance"]
    image = httpx.get(results[0]["thumbnail"], timeout=30)
    assert image.status_code == 200
    assert image.content == library(served.cloud)["colours/blue.jpg"]
    assert "X-Amz-Signature=" in results[0]["thumbnail"]  # SigV4 presigned


def test_image_upload_api_and_prefix_filter(served: Served) -> None:
    data = library(served.cloud)["photos/astronaut.jpg"]
    response = _post_image(served, data, k=2, name="query.jpg")
    assert response.status_code == 200, response.text
    keys = [r["key"] for r in response.json()["results"]]
    assert keys == ["photos/astronaut.jpg", "photos/astronaut-small.jpg"]

    response = _get(served, "/api/search", text="red", k=20, prefix="colours")
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
        response = _get(served, "/api/search", **params)
        assert response.status_code == 400, params
        assert fragment in response.json()["error"]
        assert "--" not in response.json()["error"]  # the page has no CLI flags
    bad = _post_image(served, b"GIF89a-not-really").json()
    assert "not an image the model can search with" in bad["error"]
    too_big = _post_image(served, b"\xff" * (served.cloud.cfg.model.max_inline_image_bytes + 1))
    assert too_big.status_code == 413
    assert _post_image(served, b"").status_code == 400


def test_status_and_info_api(served: Served) -> None:
    status = _get(served, "/api/status").json()
    assert status["queue"]["total"] == 0 and status["dlq"]["total"] == 0
    assert status["last_hour"]["ImagesEmbedded"] == len(library(served.cloud))
    info = _get(served, "/api/info").json()
    assert info["index"] == served.cloud.cfg.index_name and info["max_k"] == LIMITS.query_top_k_max
    page = _get(served, "/")
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
    before = _model_calls(served.cloud)
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
    assert _model_calls(served.cloud) == before
    # The page's own requests (same origin, with the header) still work.
    own = _get(served, "/api/search", text="red", k=1)
    assert own.status_code == 200, own.text
    assert _model_calls(served.cloud) == before + 1


def test_presigned_urls_live_five_minutes(served: Served) -> None:
    assert PRESIGN_SECONDS == 300
    thumbnail = _get(served, "/api/search", text="blue", k=1).json()["results"][0]["thumbnail"]
    assert "X-Amz-Expires=300&" in thumbnail + "&"


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) "
            "or set IMGSEARCH_CHROMIUM; the browser test never downloads one"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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
    html = _get(served, "/").text
    assert "<script src=" not in html and "http://" not in html and "https://" not in html
    assert "<link " not in html  # no external stylesheet either
