"""``imgsearch serve``: the search page and its JSON API (Starlette, one static page).

Routes (all on 127.0.0.1)::

    GET  /                      the page (static HTML + vanilla JS, no build step)
    GET  /api/info              index, model, limits: what the page needs to set itself up
    GET  /api/search?text=...&k=5&prefix=05/&filter={json}
    POST /api/search/image?k=5&prefix=05/   body = the image bytes (upload or drop)
    GET  /api/status            the same figures as ``imgsearch status --output json``

Searches go through :class:`scripts.ops.search.Searcher`, the CLI's own code path. Each
result carries a presigned GET URL of its image (SigV4, against the endpoint in use,
so thumbnails also load from the local cloud). Errors answer ``{"error": "..."}``
with 400 (bad input: any of the tools' errors), 413 (image too large) or 502 (an AWS
call failed), never a stack trace; :data:`ERROR_STATUSES` is the one map. The app
knows nothing of the CLI: ``imgsearch serve`` hands it a :class:`WebContext`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.s3uri import S3UriError
from scripts.common.cli import Clients, describe_aws_error, one_line
from scripts.common.errors import ToolError
from scripts.ops import status as status_mod
from scripts.ops import where
from scripts.ops.errors import SearchInputError
from scripts.ops.search import DEFAULT_K, Searcher, SearchResult, describe_index, image_from_bytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PAGE = Path(__file__).with_name("static") / "index.html"
PRESIGN_SECONDS = 3600


@dataclass
class WebContext:
    """The server's view of one deployment; the searcher is built on first use and kept."""

    cfg: PipelineConfig
    clients: Clients
    """The shared boto3 clients (thread-safe; the server's threads use them all)."""
    presigner: S3Client
    """An S3 client that signs with SigV4, whatever the region's default."""
    vector_bucket: str
    index_name: str
    queue_url: Callable[[], str]
    dlq_url: Callable[[], str]
    _searcher: Searcher | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_deployment(
        cls,
        cfg: PipelineConfig,
        clients: Clients,
        *,
        vector_bucket: str,
        index_name: str,
        queue_url: Callable[[], str],
        dlq_url: Callable[[], str],
    ) -> WebContext:
        presigner = clients.session.client(
            "s3",
            endpoint_url=clients.endpoint_url,
            config=Config(signature_version="s3v4"),
        )
        return cls(
            cfg=cfg,
            clients=clients,
            presigner=presigner,
            vector_bucket=vector_bucket,
            index_name=index_name,
            queue_url=queue_url,
            dlq_url=dlq_url,
        )

    def describe(self) -> str:
        return f"{self.index_name!r} in vector bucket {self.vector_bucket!r}"

    def searcher(self) -> Searcher:
        with self._lock:
            if self._searcher is None:
                info = describe_index(
                    self.clients("s3vectors"), self.vector_bucket, self.index_name
                )
                self._searcher = Searcher(
                    self.cfg,
                    bedrock=self.clients("bedrock-runtime", max_attempts=1),
                    s3vectors=self.clients("s3vectors"),
                    s3=self.clients("s3"),
                    index=info,
                )
            return self._searcher

    def presign(self, bucket: str, key: str) -> str:
        return str(
            self.presigner.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
            )
        )

    def results(self, result: SearchResult) -> dict[str, Any]:
        out = result.as_dict()
        for item, hit in zip(out["results"], result.hits, strict=True):
            item["thumbnail"] = (
                self.presign(hit.bucket, hit.key) if hit.bucket and hit.key else None
            )
        return out

    def status(self) -> dict[str, Any]:
        current = status_mod.collect(
            self.cfg,
            sqs=self.clients("sqs"),
            cloudwatch=self.clients("cloudwatch"),
            queue_url=self.queue_url(),
            dlq_url=self.dlq_url(),
        )
        return current.as_dict()


# --------------------------------------------------------------------------- helpers


ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ToolError, 400),  # the library's and the tools' own errors: bad input or a missing thing
    (S3UriError, 400),
    (ClientError, 502),
    (BotoCoreError, 502),
)
"""Expected failures and their HTTP status; anything else is a bug (500, Starlette's)."""


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _error_response(exc: Exception) -> JSONResponse | None:
    for kind, status in ERROR_STATUSES:
        if isinstance(exc, kind):
            text = describe_aws_error(exc) if status == 502 else str(exc)
            return _error(text, status)
    return None


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Expected failures become ``{"error": ...}`` answers with a fitting status."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            response = _error_response(exc)
            if response is None:
                raise
            return response

    return wrapped


def _k(request: Request) -> int:
    raw = request.query_params.get("k") or str(DEFAULT_K)
    try:
        return int(raw)
    except ValueError:
        raise SearchInputError(f"k {raw!r}: expected a whole number of results") from None


def _filter(request: Request) -> dict[str, Any] | None:
    parts = []
    prefix_doc = where.prefix_filter(request.query_params.get("prefix") or "")
    if prefix_doc:
        parts.append(prefix_doc)
    raw = request.query_params.get("filter")
    if raw:
        parts.append(where.parse_filter_json(raw))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


# --------------------------------------------------------------------------- the app


def create_app(web: WebContext) -> Starlette:
    async def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html")

    async def info(request: Request) -> Response:
        model = web.cfg.model
        return JSONResponse(
            {
                "vector_bucket": web.vector_bucket,
                "index": web.index_name,
                "model_id": model.model_id,
                "query_purpose": web.cfg.query_purpose,
                "default_k": DEFAULT_K,
                "max_k": LIMITS.query_top_k_max,
                "max_image_bytes": model.max_inline_image_bytes,
                "image_formats": list(model.image_formats),
            }
        )

    async def search_text(request: Request) -> Response:
        text = request.query_params.get("text") or ""
        k, filter_doc = _k(request), _filter(request)

        def run() -> dict[str, Any]:
            return web.results(web.searcher().text(text, k=k, filter=filter_doc))

        return JSONResponse(await run_in_threadpool(run))

    async def search_image(request: Request) -> Response:
        k, filter_doc = _k(request), _filter(request)
        limit = web.cfg.model.max_inline_image_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _error(f"the image is {declared} bytes; the limit is {limit}", 413)
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > limit:
                return _error(f"the image is larger than the {limit}-byte limit", 413)
        if not data:
            raise SearchInputError("no image in the request: drop or choose an image file")
        name = request.query_params.get("name") or "the uploaded image"

        def run() -> dict[str, Any]:
            image = image_from_bytes(bytes(data), name, web.cfg)
            return web.results(web.searcher().image(image, k=k, filter=filter_doc))

        return JSONResponse(await run_in_threadpool(run))

    async def status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(web.status))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/info", _guarded(info)),
            Route("/api/search", _guarded(search_text)),
            Route("/api/search/image", _guarded(search_image), methods=["POST"]),
            Route("/api/status", _guarded(status)),
        ]
    )


__all__ = ["ERROR_STATUSES", "PAGE", "WebContext", "create_app"]
