"""``imgsearch serve``: the search page and its JSON API (Starlette, one static page).

Routes (on 127.0.0.1 unless ``serve --host``; every ``/api`` call needs ``X-Imgsearch: 1``)::

    GET  /                      the page (static HTML + vanilla JS, no build step)
    GET  /api/info              index, model, limits: what the page needs to set itself up
    GET  /api/search?text=...&k=5&prefix=05/&filter={json}
    POST /api/search/image?k=5&prefix=05/   body = the image bytes (upload or drop)
    GET  /api/status            the same figures as ``imgsearch status --output json``
    GET  /favicon.ico           a 16 px icon, so no page load logs a 404

Who may ask (:class:`Access`, checked before any route): the ``Host`` header must be the
server's own address (DNS rebinding: a hostile name resolving to 127.0.0.1 gets 403);
``/api`` refuses a cross-site ``Origin`` or ``Sec-Fetch-Site`` and needs the custom header
``X-Imgsearch``, so a browser must preflight, and the preflight fails because the app sends
no CORS headers (an ``<img src>`` or a no-cors form POST never reaches Bedrock). Bound to
another interface, every request also needs the token printed at start (a cookie set by
visiting ``/?token=...``, or the ``X-Imgsearch-Token`` header).

Searches go through :class:`scripts.ops.search.Searcher`, the CLI's own code path. Each
result carries a presigned GET URL of its image (SigV4, against the endpoint in use,
so thumbnails also load from the local cloud). Errors answer ``{"error": "..."}``
with 400 (bad input: any of the tools' errors), 413 (image too large), 503 (a service
unreachable: which one, at which endpoint) or 502 (an AWS call failed), never a stack
trace; :data:`ERROR_STATUSES` is the one map. Presigned URLs live 5 minutes. The app knows
nothing of the CLI: ``imgsearch serve`` hands it a :class:`WebContext`.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from imgsearch.aws_errors import NETWORK_ERRORS
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
PRESIGN_SECONDS = 300
"""Presigned image URLs live 5 minutes: a leaked result list soon opens nothing."""
API_HEADER = "X-Imgsearch"
"""The custom header every ``/api`` call needs: not CORS-safelisted, so a browser preflights."""
TOKEN_HEADER = "X-Imgsearch-Token"
TOKEN_COOKIE = "imgsearch_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""Addresses only this machine reaches: ``serve`` needs no token there."""
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
FAVICON = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGklEQVR42mPkzj7NQApgYiARjGoY1TB0NAAACBoBYbblNeQAAAAASUVORK5CYII="
)
"""A 16x16 PNG in the page's accent colour."""


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


# --------------------------------------------------------------------------- access


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Access:
    """Where the server listens, and the token it asks for off loopback."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None

    def allowed_hosts(self) -> frozenset[str] | None:
        """``Host`` headers that name this server; None: any (a wildcard bind, token-guarded)."""
        if self.host in WILDCARD_HOSTS:
            return None
        names = {self.host} | (LOOPBACK_HOSTS - {"::1"} if self.host in LOOPBACK_HOSTS else set())
        if self.host == "::1":
            names.add("localhost")
        allowed = {_host_port(n, self.port) for n in names}
        if self.port == 80:  # browsers leave the default port out
            allowed |= {f"[{n}]" if ":" in n else n for n in names}
        return frozenset(allowed)

    def url(self) -> str:
        """The address to open; with the token, the visit that sets its cookie."""
        base = f"http://{_host_port(self.host, self.port)}/"
        return f"{base}?token={self.token}" if self.token else base

    def _has_token(self, request: Request) -> bool:
        assert self.token is not None
        given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def check(self, request: Request) -> Response | None:
        """The refusal (403) or token redirect for this request; None lets it through."""
        host = request.headers.get("host", "")
        allowed = self.allowed_hosts()
        if allowed is not None and host not in allowed:
            return _error(
                f"Host {host!r} is not this server's address; open {self.url()} instead", 403
            )
        path = request.url.path
        if self.token is not None and not self._has_token(request):
            offered = request.query_params.get("token")
            if (
                path == "/"
                and offered
                and hmac.compare_digest(offered.encode(), self.token.encode())
            ):
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                return response
            return _error(
                "this server needs its token: open the URL with ?token=... that "
                "imgsearch serve printed at start",
                403,
            )
        if path.startswith("/api/"):
            return _cross_site(request, host)
        return None


def _cross_site(request: Request, host: str) -> Response | None:
    """403 for API calls another site's page made the browser send."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return _error(f"cross-site request refused (Sec-Fetch-Site: {site})", 403)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return _error(f"request from another origin refused (Origin: {origin})", 403)
    if request.headers.get(API_HEADER) is None:
        return _error(
            f"API calls need the {API_HEADER} header (the page sends it); "
            "requests from other sites are refused",
            403,
        )
    return None


class _AccessGuard:
    """ASGI middleware: :meth:`Access.check` before any route (and before any body is read)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.access.check(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------- helpers


ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ToolError, 400),  # the library's and the tools' own errors: bad input or a missing thing
    (S3UriError, 400),
    *((kind, 503) for kind in NETWORK_ERRORS),  # no answer: the service is down or unreachable
    (ClientError, 502),
    (BotoCoreError, 502),
)
"""Expected failures and their HTTP status; anything else is a bug (500, Starlette's)."""


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def _unreachable(exc: Exception, services: str, endpoint: str | None) -> str:
    """What the person at the page can act on: which service, where, and the likely cause."""
    if endpoint:
        return f"Can't reach {services} at {endpoint} — is the local cloud running?"
    where_ = getattr(exc, "kwargs", {}).get("endpoint_url") or "its AWS endpoint"
    return f"Can't reach {services} at {where_} — check this machine's network connection"


def _describe(exc: Exception, status: int, services: str, endpoint: str | None) -> str:
    if status == 503:
        return _unreachable(exc, services, endpoint)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no usable AWS credentials: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then restart imgsearch serve"
        )
    return describe_aws_error(exc) if status == 502 else str(exc)


def _error_response(
    exc: Exception, services: str = "AWS", endpoint: str | None = None
) -> JSONResponse | None:
    for kind, status in ERROR_STATUSES:
        if isinstance(exc, kind):
            return _error(_describe(exc, status, services, endpoint), status)
    return None


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler, services: str, endpoint: str | None) -> Handler:
    """Expected failures become ``{"error": ...}`` answers with a fitting status;
    ``services`` names what the handler calls, for the "can't reach" answer."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            response = _error_response(exc, services, endpoint)
            if response is None:
                raise
            return response

    return wrapped


def _k(request: Request) -> int:
    raw = request.query_params.get("k") or str(DEFAULT_K)
    try:
        k = int(raw)
    except ValueError:
        raise SearchInputError(f"k {raw!r}: expected a whole number of results") from None
    if not 1 <= k <= LIMITS.query_top_k_max:
        raise SearchInputError(
            f"k {k}: use 1..{LIMITS.query_top_k_max} (S3 Vectors' most results per query)"
        )
    return k


def _filter(request: Request) -> dict[str, Any] | None:
    parts = []
    prefix_doc = where.prefix_filter(request.query_params.get("prefix") or "")
    if prefix_doc:
        parts.append(prefix_doc)
    raw = request.query_params.get("filter")
    if raw:
        try:
            json.loads(raw)
        except ValueError as exc:
            raise SearchInputError(
                f'filter: not valid JSON ({exc}); e.g. {{"format": {{"$eq": "png"}}}}'
            ) from exc
        parts.append(where.parse_filter_json(raw, "filter"))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


# --------------------------------------------------------------------------- the app


def create_app(web: WebContext, access: Access) -> Starlette:
    """The app for ``web``, answering only the requests ``access`` lets through."""

    async def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html")

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/png")

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
        text = (request.query_params.get("text") or "").strip()
        if not text:
            raise SearchInputError("the query is empty: type what to look for, e.g. wind turbine")
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

    endpoint = web.clients.endpoint_url
    searches, pipeline = "S3 Vectors / Bedrock", "SQS / CloudWatch"
    return Starlette(
        routes=[
            Route("/", page),
            Route("/favicon.ico", favicon),
            Route("/api/info", _guarded(info, "S3 Vectors", endpoint)),
            Route("/api/search", _guarded(search_text, searches, endpoint)),
            Route(
                "/api/search/image", _guarded(search_image, searches, endpoint), methods=["POST"]
            ),
            Route("/api/status", _guarded(status, pipeline, endpoint)),
        ],
        middleware=[Middleware(_AccessGuard, access=access)],
    )


__all__ = ["ERROR_STATUSES", "PAGE", "PRESIGN_SECONDS", "Access", "WebContext", "create_app"]
