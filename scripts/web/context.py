"""The web server's view of one deployment: clients, names, the searcher and the caches.

``imgsearch serve`` builds one :class:`WebContext` (:func:`WebContext.for_deployment`);
the app knows nothing of the CLI. The searcher is built on first use and kept; the
status figures and thumbnails are cached here, so every tab shares them.

Two searchers answer the page the same way (:class:`PageSearcher`): :class:`DirectSearcher`
calls Bedrock and S3 Vectors with the operator's credentials (the CLI's own
:class:`imgsearch.search.Searcher`); :class:`ApiSearcher` (``serve --api``) sends each
query to the deployed search API instead, so the server needs ``execute-api:Invoke``
and no Bedrock or S3 Vectors permission.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from botocore.config import Config
from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_bucket, is_not_found
from imgsearch.config import PipelineConfig
from imgsearch.converge import normalize_etag
from imgsearch.limits import LIMITS
from imgsearch.search import Searcher, SearchResult, describe_index
from imgsearch.search_images import QueryImage
from imgsearch.vectors import VectorIndex
from scripts.common.cli import Clients
from scripts.common.search_api import ApiError, SearchApiEndpoint, query_body, result_from_answer
from scripts.ops import status as status_mod
from scripts.ops.objects import SourceBucket
from scripts.web import thumbnails
from scripts.web.http_errors import HttpError
from scripts.web.params import SearchParams
from scripts.web.status_cache import StatusCache

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef, HeadObjectRequestTypeDef

PRESIGN_SECONDS = 300
"""Presigned image URLs live 5 minutes: a leaked result list soon opens nothing; the page
links to ``/original``, which signs afresh on every click."""


class PageSearcher(Protocol):
    """What the page's searches call: one query kind per method, the page's parameters."""

    vectors: VectorIndex | None
    """The index, read directly (None through the search API: no S3 Vectors access)."""

    def text(self, text: str, p: SearchParams) -> SearchResult: ...
    def image(self, image: QueryImage, p: SearchParams) -> SearchResult: ...
    def like(self, uri: str, p: SearchParams) -> SearchResult: ...


class DirectSearcher:
    """The search library itself: Bedrock and S3 Vectors with the server's credentials."""

    def __init__(self, core: Searcher) -> None:
        self.core = core
        self.vectors: VectorIndex | None = core.vectors

    def text(self, text: str, p: SearchParams) -> SearchResult:
        return self._grouped(
            self.core.text(text, k=p.k, filter=p.filter, max_distance=p.max_distance), p
        )

    def image(self, image: QueryImage, p: SearchParams) -> SearchResult:
        return self._grouped(
            self.core.image(image, k=p.k, filter=p.filter, max_distance=p.max_distance), p
        )

    def like(self, uri: str, p: SearchParams) -> SearchResult:
        return self._grouped(
            self.core.like(uri, k=p.k, filter=p.filter, max_distance=p.max_distance), p
        )

    def _grouped(self, result: SearchResult, p: SearchParams) -> SearchResult:
        return self.core.group_duplicates(result) if p.group else result


class ApiSearcher:
    """The same queries sent to the search API's ``POST /search`` (grouping done there).

    An error answer keeps its status for the page (:func:`api_refusal`).
    """

    vectors: VectorIndex | None = None

    def __init__(self, endpoint: SearchApiEndpoint) -> None:
        self.endpoint = endpoint

    def text(self, text: str, p: SearchParams) -> SearchResult:
        return self._ask({"text": text}, p)

    def image(self, image: QueryImage, p: SearchParams) -> SearchResult:
        if image.data is None:  # image_from_bytes always keeps the bytes
            raise HttpError(413, f"{image.source}: too large to send inline to the search API")
        return self._ask({"image": base64.b64encode(image.data).decode()}, p)

    def like(self, uri: str, p: SearchParams) -> SearchResult:
        return self._ask({"like": uri}, p)

    def _ask(self, query: dict[str, Any], p: SearchParams) -> SearchResult:
        body = query_body(
            query,
            k=p.k,
            filter_doc=p.filter,
            max_distance=p.max_distance,
            group_duplicates=p.group,
        )
        try:
            return result_from_answer(self.endpoint.search(body))
        except ApiError as exc:
            raise api_refusal(exc, self.endpoint.url) from exc


def api_refusal(exc: ApiError, url: str) -> HttpError:
    """The API's error answer with its own status for the page; no answer at all is 503."""
    if exc.status is None:
        return HttpError(
            503, f"Can't reach the search API at {url} — check the URL and the network"
        )
    return HttpError(exc.status, str(exc))


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
    source_bucket: str | None = None
    """The bucket the pipeline indexes: the only one /thumb, /original and /api/folders read."""
    thumbs: thumbnails.ThumbCache = field(
        default_factory=lambda: thumbnails.ThumbCache(thumbnails.default_cache_dir())
    )
    log_group: Callable[[], str | None] = field(default=lambda: None, repr=False)
    """The embedder's log group (for the failure list), looked up on first use."""
    search_api: SearchApiEndpoint | None = None
    """Set (``serve --api``): every search goes through the deployed search API."""
    _searcher: PageSearcher | None = field(default=None, repr=False)
    _health: dict[str, Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _status: StatusCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._status = StatusCache(self._fetch_status)

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
        source_bucket: str | None = None,
        thumbs: thumbnails.ThumbCache | None = None,
        log_group: Callable[[], str | None] | None = None,
        search_api: SearchApiEndpoint | None = None,
    ) -> WebContext:
        presigner = clients.session.client(
            "s3",
            endpoint_url=clients.endpoint_url,
            config=Config(signature_version="s3v4"),
        )
        extra: dict[str, Any] = {}
        if thumbs is not None:
            extra["thumbs"] = thumbs
        if log_group is not None:
            extra["log_group"] = log_group
        return cls(
            cfg=cfg,
            clients=clients,
            presigner=presigner,
            vector_bucket=vector_bucket,
            index_name=index_name,
            queue_url=queue_url,
            dlq_url=dlq_url,
            source_bucket=source_bucket,
            search_api=search_api,
            **extra,
        )

    def describe(self) -> str:
        where = f"{self.index_name!r} in vector bucket {self.vector_bucket!r}"
        return f"{where} through the search API {self.search_api.url}" if self.search_api else where

    def searcher(self) -> PageSearcher:
        with self._lock:
            if self._searcher is None:
                self._searcher = self._make_searcher()
            return self._searcher

    def _make_searcher(self) -> PageSearcher:
        if self.search_api is not None:
            return ApiSearcher(self.search_api)
        info = describe_index(self.clients("s3vectors"), self.vector_bucket, self.index_name)
        return DirectSearcher(
            Searcher(
                self.cfg,
                bedrock=self.clients("bedrock-runtime", max_attempts=1),
                s3vectors=self.clients("s3vectors"),
                s3=self.clients("s3"),
                index=info,
            )
        )

    def index_facts(self) -> dict[str, Any]:
        """Index, model and limits for /api/info: the API's ``GET /health`` (asked once) in
        API mode, else the deployment's names and the configured model."""
        if self.search_api is None:
            return {
                "vector_bucket": self.vector_bucket,
                "index": self.index_name,
                "dimension": self.cfg.dimension,
                "model_id": self.cfg.model.model_id,
                "max_k": LIMITS.query_top_k_max,
                "max_image_bytes": self.cfg.model.max_inline_image_bytes,
                "search_api": None,
            }
        with self._lock:
            if self._health is None:
                try:
                    self._health = self.search_api.health()
                except ApiError as exc:
                    raise api_refusal(exc, self.search_api.url) from exc
            health = self._health
        return {
            **{name: health.get(name) for name in ("vector_bucket", "index", "dimension")},
            "model_id": health.get("model_id"),
            "max_k": int(health.get("max_k") or LIMITS.query_top_k_max),
            "max_image_bytes": int(
                health.get("max_image_bytes") or self.cfg.model.max_inline_image_bytes
            ),
            "search_api": self.search_api.url,
        }

    # ------------------------------------------------------------------ images

    def check_bucket(self, bucket: str) -> None:
        """403 unless ``bucket`` is the deployment's source bucket."""
        if not self.source_bucket:
            raise HttpError(
                403,
                "this server knows no source bucket, so it serves no images: restart "
                "imgsearch serve with --source-bucket",
            )
        if bucket != self.source_bucket:
            raise HttpError(
                403,
                f"bucket {bucket!r} is not the deployment's source bucket "
                f"{self.source_bucket!r}; this server serves only that bucket's images",
            )

    def owner_for(self, bucket: str) -> str | None:
        """The ``ExpectedBucketOwner`` of calls on ``bucket`` (the source bucket's only).

        Not in :meth:`presign`: a SigV4 presigned URL signs it as a header the browser's
        GET would have to send, so the link would fail its signature check.
        """
        return SourceBucket(self.source_bucket, self.cfg.source_bucket_owner).owner_for(bucket)

    def presign(self, bucket: str, key: str) -> str:
        return str(
            self.presigner.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS
            )
        )

    def results(self, result: SearchResult) -> dict[str, Any]:
        """The answer of a search: each hit with same-origin thumbnail and original URLs."""
        out = result.as_dict()
        for item, hit in zip(out["results"], result.hits, strict=True):
            if hit.bucket and hit.key:
                where = {"bucket": hit.bucket, "key": hit.key}
                etag = hit.metadata.get("etag")
                item["thumbnail"] = "/thumb?" + urlencode({**where, "etag": str(etag or "")})
                item["original"] = "/original?" + urlencode(where)
            else:
                item["thumbnail"] = item["original"] = None
        return out

    def thumbnail(self, bucket: str, key: str, etag: str) -> tuple[thumbnails.Thumbnail, bool]:
        """The object's thumbnail and whether it came from the cache; 403/404/415 refusals."""
        self.check_bucket(bucket)
        s3 = self.clients("s3")
        if not etag:
            etag = str(self._head(s3, bucket, key).get("ETag") or "")
        wanted = normalize_etag(etag) or ""
        name = thumbnails.cache_key(bucket, key, wanted)

        def make() -> thumbnails.Thumbnail:
            return self._render(s3, bucket, key)

        return self.thumbs.get_or_make(name, make)

    def _render(self, s3: S3Client, bucket: str, key: str) -> thumbnails.Thumbnail:
        request: GetObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
        if owner := self.owner_for(bucket):
            request["ExpectedBucketOwner"] = owner
        try:
            response = s3.get_object(**request)
        except ClientError as exc:
            raise _missing(exc, bucket, key) or exc from exc
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > thumbnails.MAX_ORIGINAL_BYTES:
                raise HttpError(
                    415,
                    f"s3://{bucket}/{key} is larger than the {thumbnails.MAX_ORIGINAL_BYTES}-"
                    "byte limit for a thumbnail; open the original",
                )
            data = body.read()
        finally:
            body.close()
        try:
            return thumbnails.render(data)
        except thumbnails.NotAnImage as exc:
            raise HttpError(415, f"s3://{bucket}/{key}: {exc}") from exc

    def _head(self, s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
        request: HeadObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
        if owner := self.owner_for(bucket):
            request["ExpectedBucketOwner"] = owner
        try:
            return dict(s3.head_object(**request))
        except ClientError as exc:
            raise _missing(exc, bucket, key) or exc from exc

    # ------------------------------------------------------------------ status

    def _fetch_status(self) -> dict[str, Any]:
        current = status_mod.collect(
            self.cfg,
            sqs=self.clients("sqs"),
            cloudwatch=self.clients("cloudwatch"),
            queue_url=self.queue_url(),
            dlq_url=self.dlq_url(),
        )
        return current.as_dict()

    def status(self) -> StatusCache:
        """The status figures, shared by every tab (at most one fetch per minute)."""
        return self._status


def _missing(exc: ClientError, bucket: str, key: str) -> HttpError | None:
    """404 for a missing bucket or object (HeadObject's bare 404 included)."""
    if is_missing_bucket(exc):
        return HttpError(404, f"bucket {bucket!r} does not exist")
    if is_not_found(exc):
        return HttpError(
            404, f"s3://{bucket}/{key}: no such object (deleted since it was indexed?)"
        )
    return None


__all__ = ["PRESIGN_SECONDS", "ApiSearcher", "DirectSearcher", "PageSearcher", "WebContext"]
