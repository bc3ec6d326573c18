"""``imgsearch serve``: the search page and its JSON API (Starlette; routes only).

Routes (on 127.0.0.1 unless ``serve --host``; every ``/api`` call needs ``X-Imgsearch: 1``)::

    GET  /                      the page (static HTML + vanilla JS, no build step)
    GET  /static/<name>         the page's other files (scripts, styles)
    GET  /api/info              index, model, limits: what the page needs to set itself up
    GET  /api/search?text=...   text search; the common parameters: scripts.web.params
    POST /api/search/image      body = the image bytes (upload or drop)
    GET  /api/search/like?uri=s3://bucket/key   "more like this": the stored vector, no model call
    GET  /api/folders?under=trips/              the folder picker: direct subfolders (S3)
    GET  /api/status            ``imgsearch status --output json``, cached 60 s for every tab
    GET  /api/failures          the failure log and the DLQ, as ``verify`` / ``dlq list`` see them
    GET  /thumb?bucket=&key=&etag=    a 320 px thumbnail, cached on disk
    GET  /original?bucket=&key=       307 to a freshly presigned URL (5 minutes)
    GET  /favicon.ico           a 16 px icon, so no page load logs a 404

Who may ask: :mod:`scripts.web.access`. Errors: :mod:`scripts.web.http_errors`.
Searches go through :class:`imgsearch.search.Searcher`, the CLI's own code path, or with
``serve --api`` through the deployed search API (:class:`scripts.web.context.ApiSearcher`);
the answers have the same shape either way. The app knows nothing of the CLI:
``imgsearch serve`` hands it a :class:`WebContext`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from imgsearch.search import DEFAULT_K, SearchResult, image_from_bytes
from imgsearch.search_errors import SearchInputError
from scripts.web.access import LOOPBACK_HOSTS, Access, AccessGuard
from scripts.web.context import PRESIGN_SECONDS, WebContext
from scripts.web.failures import list_failures
from scripts.web.folders import list_folders
from scripts.web.http_errors import (
    ERROR_STATUSES,
    HttpError,
    describe,
    error,
    guarded,
    status_of,
)
from scripts.web.params import SearchParams, search_params
from scripts.web.status_cache import STATUS_TTL_SECONDS, StaleStatus

STATIC = Path(__file__).with_name("static")
PAGE = STATIC / "index.html"
FAVICON = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGklEQVR42mPkzj7NQApgYiARjGoY1TB0NAAACBoBYbblNeQAAAAASUVORK5CYII="
)
"""A 16x16 PNG in the page's accent colour."""
THUMB_CACHE_CONTROL = "private, max-age=86400, immutable"
"""A thumbnail URL names one object version (its ETag): the browser may keep it."""


def _required(request: Request, name: str, example: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise SearchInputError(f"{name} is missing: give it, e.g. {name}={example}")
    return value


def create_app(web: WebContext, access: Access) -> Starlette:
    """The app for ``web``, answering only the requests ``access`` lets through."""
    endpoint = web.clients.endpoint_url
    searches, pipeline = "S3 Vectors / Bedrock", "SQS / CloudWatch"
    likes = index = "S3 Vectors"
    search_endpoint = endpoint
    if web.search_api is not None:
        searches = likes = index = "the search API"
        search_endpoint = web.search_api.url if endpoint else None

    async def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html")

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/png")

    async def info(request: Request) -> Response:
        model = web.cfg.model
        facts = await run_in_threadpool(web.index_facts)
        return JSONResponse(
            {
                **facts,
                "query_purpose": web.cfg.query_purpose,
                "default_k": DEFAULT_K,
                "image_formats": list(model.image_formats),
                "status_poll_seconds": int(STATUS_TTL_SECONDS),
                "max_distance": {
                    "text": model.text_max_distance,
                    "image": model.image_max_distance,
                },
                "presign_seconds": PRESIGN_SECONDS,
                "source_bucket": web.source_bucket,
            }
        )

    async def answer(search: Callable[[SearchParams], SearchResult], p: SearchParams) -> Response:
        def run() -> dict[str, Any]:
            return web.results(search(p))

        return JSONResponse(await run_in_threadpool(run))

    async def search_text(request: Request) -> Response:
        text = (request.query_params.get("text") or "").strip()
        if not text:
            raise SearchInputError("the query is empty: type what to look for, e.g. wind turbine")
        p = search_params(request.query_params, web.source_bucket)
        return await answer(lambda p: web.searcher().text(text, p), p)

    async def search_like(request: Request) -> Response:
        uri = _required(request, "uri", "s3://bucket/photos/cat.jpg")
        p = search_params(request.query_params, web.source_bucket)
        return await answer(lambda p: web.searcher().like(uri, p), p)

    async def search_image(request: Request) -> Response:
        p = search_params(request.query_params, web.source_bucket)
        limit = int((await run_in_threadpool(web.index_facts))["max_image_bytes"])
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return error(f"the image is {declared} bytes; the limit is {limit}", 413)
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > limit:
                return error(f"the image is larger than the {limit}-byte limit", 413)
        if not data:
            raise SearchInputError("no image in the request: drop or choose an image file")
        name = request.query_params.get("name") or "the uploaded image"

        def search(p: SearchParams) -> SearchResult:
            image = image_from_bytes(bytes(data), name, web.cfg, max_bytes=limit)
            return web.searcher().image(image, p)

        return await answer(search, p)

    async def status(request: Request) -> Response:
        try:
            snap = await run_in_threadpool(web.status().get)
        except StaleStatus as stale:
            code = status_of(stale.cause)
            if stale.snapshot is None or code is None:
                raise stale.cause from None
            words = describe(stale.cause, code, pipeline, endpoint)
            figures = {**stale.snapshot.figures, "fetched_at": stale.snapshot.fetched_at}
            return JSONResponse({**figures, "stale": True, "error": words})
        return JSONResponse({**snap.figures, "fetched_at": snap.fetched_at, "stale": False})

    async def folders(request: Request) -> Response:
        if not web.source_bucket:
            raise HttpError(
                404, "this server knows no source bucket: restart it with --source-bucket"
            )
        bucket, under = web.source_bucket, request.query_params.get("under") or ""
        owner = web.owner_for(bucket)
        listing = await run_in_threadpool(
            list_folders, web.clients("s3"), bucket, under, owner=owner
        )
        return JSONResponse(listing.as_dict())

    async def failures(request: Request) -> Response:
        listing = await run_in_threadpool(list_failures, web)
        return JSONResponse(listing)

    async def thumb(request: Request) -> Response:
        bucket = _required(request, "bucket", "my-photos")
        key = _required(request, "key", "photos/cat.jpg")
        etag = (request.query_params.get("etag") or "").strip()
        image, cached = await run_in_threadpool(web.thumbnail, bucket, key, etag)
        headers = {
            "Cache-Control": THUMB_CACHE_CONTROL,
            "X-Thumb-Cache": "hit" if cached else "miss",
        }
        return Response(image.data, media_type=image.media_type, headers=headers)

    async def original(request: Request) -> Response:
        bucket = _required(request, "bucket", "my-photos")
        key = _required(request, "key", "photos/cat.jpg")
        web.check_bucket(bucket)
        return RedirectResponse(web.presign(bucket, key), status_code=307)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/favicon.ico", favicon),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Route("/api/info", guarded(info, index, search_endpoint)),
            Route("/api/search", guarded(search_text, searches, search_endpoint)),
            Route(
                "/api/search/image",
                guarded(search_image, searches, search_endpoint),
                methods=["POST"],
            ),
            Route("/api/search/like", guarded(search_like, likes, search_endpoint)),
            Route("/api/folders", guarded(folders, "S3", endpoint)),
            Route("/api/status", guarded(status, pipeline, endpoint)),
            Route("/api/failures", guarded(failures, "SQS / S3 / CloudWatch Logs", endpoint)),
            Route("/thumb", guarded(thumb, "S3", endpoint)),
            Route("/original", guarded(original, "S3", endpoint)),
        ],
        middleware=[Middleware(AccessGuard, access=access)],
    )


__all__ = [
    "ERROR_STATUSES",
    "LOOPBACK_HOSTS",
    "PAGE",
    "PRESIGN_SECONDS",
    "Access",
    "WebContext",
    "create_app",
]
