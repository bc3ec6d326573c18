"""The web tests' shared pieces: the served app on a seeded local cloud, and Chromium.

``served`` runs the production app (:func:`scripts.web.app.create_app`) on 127.0.0.1,
pointed at a seeded local cloud exactly as ``imgsearch serve --endpoint-url ...`` would.
``browser`` drives Debian's ``/usr/bin/chromium`` with Playwright (no browser download).
"""

from __future__ import annotations

import contextlib
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

from localcloud.cloud import LocalCloud
from scripts.imgsearch.commands.serve import web_context
from scripts.imgsearch.context import Context
from scripts.imgsearch.parser import build_parser
from scripts.web.app import Access, create_app

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
    thumb_cache: Path


@contextlib.contextmanager
def serving(cloud: LocalCloud, cache: Path, *extra: str) -> Iterator[Served]:
    """The production app for ``imgsearch serve --endpoint-url ... *extra``, on 127.0.0.1."""
    with cloud.environ():
        argv = ["serve", "--endpoint-url", cloud.endpoint, "--thumb-cache", str(cache), *extra]
        port = free_port()
        app = create_app(web_context(Context(build_parser().parse_args(argv))), Access(port=port))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)
        try:
            yield Served(cloud, f"http://127.0.0.1:{port}", cache)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(seeded_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(seeded_cloud, tmp_path_factory.mktemp("thumbs")) as server:
        yield server


API_HEADERS = {"X-Imgsearch": "1"}
"""What the page's own fetch calls send: a custom header, so a browser preflights."""


def get(served: Served, path: str, **params: Any) -> httpx.Response:
    return httpx.get(served.url + path, params=params, headers=API_HEADERS, timeout=60)


def post_image(served: Served, content: bytes, **params: Any) -> httpx.Response:
    return httpx.post(
        served.url + "/api/search/image",
        params=params,
        content=content,
        headers={**API_HEADERS, "Content-Type": "image/jpeg"},
        timeout=60,
    )


def model_calls(cloud: LocalCloud) -> int:
    return requests_made(cloud, "bedrock:InvokeModel")


def requests_made(cloud: LocalCloud, name: str) -> int:
    """How many ``service:Operation`` requests the local cloud's front server counted."""
    return dict(cloud.front.requests).get(name, 0)


def requests_to(cloud: LocalCloud, service: str) -> int:
    """Every request to ``service`` (``s3``, ``monitoring``...) whatever its operation."""
    return sum(
        n for name, n in dict(cloud.front.requests).items() if name.startswith(service + ":")
    )


def fetch(served: Served, path: str, **headers: str) -> httpx.Response:
    """A same-origin GET without the API header, as an ``<img src>`` or a link sends it."""
    return httpx.get(served.url + path, headers=headers, timeout=60, follow_redirects=False)


# --------------------------------------------------------------------------- the API


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
