"""The web server's view of one deployment: clients, names, the searcher and the caches.

``imgsearch serve`` builds one :class:`WebContext` (:func:`WebContext.for_deployment`);
the app knows nothing of the CLI. The searcher is built on first use and kept; the
status figures and thumbnails are cached here, so every tab shares them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.config import Config
from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_bucket, is_not_found
from imgsearch.config import PipelineConfig
from imgsearch.converge import normalize_etag
from imgsearch.search import Searcher, SearchResult, describe_index
from scripts.common.cli import Clients
from scripts.ops import status as status_mod
from scripts.web import thumbnails
from scripts.web.http_errors import HttpError
from scripts.web.status_cache import StatusCache

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PRESIGN_SECONDS = 300
"""Presigned image URLs live 5 minutes: a leaked result list soon opens nothing; the page
links to ``/original``, which signs afresh on every click."""


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
    _searcher: Searcher | None = field(default=None, repr=False)
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
            **extra,
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
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
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
        try:
            return dict(s3.head_object(Bucket=bucket, Key=key))
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


__all__ = ["PRESIGN_SECONDS", "WebContext"]
