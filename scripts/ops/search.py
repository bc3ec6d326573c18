"""Text and image search over the index: the one code path of the CLI, the web page and the demo.

A query is embedded with the pipeline's own :class:`imgsearch.embeddings.Embedder`
(purpose ``cfg.query_purpose``, ``IMAGE_RETRIEVAL`` by default: "find images") and
sent to ``QueryVectors`` through :class:`imgsearch.vectors.VectorIndex`. Before paying
for an embedding, :func:`describe_index` reads the index (``GetIndex``): a wrong bucket
or index name fails with a clear message, and the query is embedded at the *index's*
dimension, so a stack deployed with ``-c dimension=3072`` is searched correctly even
when the local ``cdk.json`` still says 1024.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgsearch import converge
from imgsearch.aws_errors import error_code, error_message, is_missing_bucket, is_not_found
from imgsearch.bedrock_errors import ACCESS_DENIED, MODEL_NOT_FOUND
from imgsearch.config import PipelineConfig
from imgsearch.embeddings import Embedder, EmbeddingError
from imgsearch.images import HEADER_READ_BYTES, UnsupportedImage, sniff
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.s3uri import S3UriError, is_s3_uri, parse_s3_uri
from imgsearch.vectors import VectorIndex
from scripts.ops.errors import (
    EmbeddingFailed,
    EmptyIndex,
    FilterError,
    IndexMismatch,
    ResourceNotFound,
    SearchInputError,
)
from scripts.ops.hits import Hit, group_duplicates, mark_weak, to_hits

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

DEFAULT_K = 5


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class IndexInfo:
    vector_bucket: str
    index: str
    dimension: int
    distance_metric: str
    arn: str | None = None


def describe_index(s3vectors: S3VectorsClient, vector_bucket: str, index: str) -> IndexInfo:
    """``GetIndex``, with a missing bucket told apart from a missing index."""
    try:
        response = s3vectors.get_index(vectorBucketName=vector_bucket, indexName=index)
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        try:
            s3vectors.get_vector_bucket(vectorBucketName=vector_bucket)
        except ClientError as inner:
            if error_code(inner) == "NotFoundException":
                raise ResourceNotFound(
                    f"vector bucket {vector_bucket!r} does not exist: deploy the stack, check "
                    "--region, or pass --vector-bucket"
                ) from exc
            raise
        raise ResourceNotFound(
            f"index {index!r} does not exist in vector bucket {vector_bucket!r}: check "
            "--index (or the stack's IndexName output)"
        ) from exc
    info = response.get("index") or {}
    return IndexInfo(
        vector_bucket=vector_bucket,
        index=index,
        dimension=int(info.get("dimension") or 0),
        distance_metric=str(info.get("distanceMetric") or "cosine"),
        arn=info.get("indexArn"),
    )


# --------------------------------------------------------------------------- query images


@dataclass(frozen=True)
class QueryImage:
    """An image to search with: inline bytes, or (too large for inline) an S3 location."""

    source: str
    format: str
    width: int
    height: int
    size: int
    data: bytes | None = None
    s3_uri: str | None = None


def image_from_bytes(data: bytes, source: str, cfg: PipelineConfig) -> QueryImage:
    """A query image from bytes (a local file or an upload), checked as the embedder checks."""
    model = cfg.model
    try:
        info = sniff(data)
    except UnsupportedImage as exc:
        raise SearchInputError(
            f"{source}: not an image the model can search with ({exc.detail}); use a JPEG, "
            f"PNG, GIF or WebP file"
        ) from exc
    _check_format(info.format, source, cfg)
    if len(data) > model.max_inline_image_bytes:
        raise SearchInputError(
            f"{source}: {len(data)} bytes is above the {model.max_inline_image_bytes}-byte "
            "limit for an inline query image; upload it to S3 and search with its s3:// URI"
        )
    return QueryImage(source, info.format, info.width, info.height, len(data), data=data)


def read_local_image(path: str, cfg: PipelineConfig) -> QueryImage:
    file = Path(path).expanduser()
    if not file.is_file():
        raise SearchInputError(
            f"--image {path!r}: no such file (give a local path or an s3:// URI)"
        )
    size = file.stat().st_size
    if size > cfg.model.max_inline_image_bytes:
        raise SearchInputError(
            f"--image {path!r}: {size} bytes is above the {cfg.model.max_inline_image_bytes}-"
            "byte limit for an inline query image; upload it to S3 and search with its s3:// URI"
        )
    return image_from_bytes(file.read_bytes(), f"--image {path!r}", cfg)


def read_s3_image(uri: str, s3: S3Client, cfg: PipelineConfig) -> QueryImage:
    """A query image from S3: inline if it fits the request body, else by S3 location."""
    try:
        location = parse_s3_uri(uri, "--image")
    except S3UriError as exc:
        raise SearchInputError(str(exc)) from exc
    bucket, key = location.bucket, location.key
    if not key:
        raise SearchInputError(
            f"--image {uri!r}: name an object, e.g. s3://{bucket}/photos/cat.jpg"
        )
    model = cfg.model
    try:
        response = s3.get_object(
            Bucket=bucket, Key=key, Range=f"bytes=0-{model.max_inline_image_bytes - 1}"
        )
    except ClientError as exc:
        code = error_code(exc)
        # NoSuchBucket is a 404 too: tell it apart before the object-not-found rule.
        if is_missing_bucket(exc):
            raise ResourceNotFound(f"--image {uri!r}: bucket {bucket!r} does not exist") from exc
        if is_not_found(exc):
            raise ResourceNotFound(f"--image {uri!r}: no such object") from exc
        if code == "InvalidRange":
            raise SearchInputError(f"--image {uri!r}: the object is empty") from exc
        raise
    data: bytes = response["Body"].read()
    total = converge.total_size(response.get("ContentRange"), len(data))
    complete = len(data) >= total
    if complete:
        return image_from_bytes(data, f"--image {uri!r}", cfg)
    if total > model.max_image_bytes:
        raise SearchInputError(
            f"--image {uri!r}: {total} bytes is above the {model.max_image_bytes}-byte limit "
            f"of {model.model_id}"
        )
    try:
        info = sniff(data[:HEADER_READ_BYTES], complete=False)
    except UnsupportedImage as exc:
        raise SearchInputError(
            f"--image {uri!r}: not an image the model can search with ({exc.detail})"
        ) from exc
    _check_format(info.format, f"--image {uri!r}", cfg)
    return QueryImage(uri, info.format, info.width, info.height, total, s3_uri=uri)


def _check_format(image_format: str, source: str, cfg: PipelineConfig) -> None:
    if image_format not in cfg.model.image_formats:
        raise SearchInputError(
            f"{source}: {cfg.model.model_id} does not accept {image_format} images "
            f"(accepted: {', '.join(cfg.model.image_formats)})"
        )


# --------------------------------------------------------------------------- searching


@dataclass
class SearchResult:
    hits: list[Hit]
    query: dict[str, Any]
    """What was searched for (text or image, k, filter, index, dimension)."""

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "results": [h.as_dict() for h in self.hits]}


def check_max_distance(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise SearchInputError(
            f"--max-distance {value}: give a distance of 0 or more (cosine distances run 0..2)"
        )
    return value


def check_k(k: int) -> int:
    if not 1 <= k <= LIMITS.query_top_k_max:
        raise SearchInputError(
            f"--k {k}: S3 Vectors returns 1..{LIMITS.query_top_k_max} results per query; "
            f"pick a k in that range"
        )
    return k


class Searcher:
    """Embeds queries and queries one index. Built once per process (web) or command."""

    def __init__(
        self,
        cfg: PipelineConfig,
        *,
        bedrock: BedrockRuntimeClient,
        s3vectors: S3VectorsClient,
        s3: S3Client,
        index: IndexInfo,
    ) -> None:
        model = cfg.model
        if index.dimension not in model.dimensions:
            made = ", ".join(map(str, model.dimensions))
            raise IndexMismatch(
                f"index {index.index!r} holds {index.dimension}-dimension vectors, which "
                f"{model.model_id} cannot produce (it makes {made}): "
                "the index was built with another model; pass -c model_id=... to match it"
            )
        self.cfg = cfg
        self.index = index
        self.s3 = s3
        self.embedder = Embedder(bedrock, cfg.model_ref, index.dimension, max_attempts=6)
        self.vectors = VectorIndex(
            s3vectors,
            index.vector_bucket,
            index.index,
            dimension=index.dimension,
            distance_metric=index.distance_metric,
        )

    def text(
        self,
        text: str,
        *,
        k: int = DEFAULT_K,
        filter: dict[str, Any] | None = None,
        max_distance: float | None = None,
    ) -> SearchResult:
        check_k(k)
        check_max_distance(max_distance)
        if not text.strip():
            raise SearchInputError(
                "--text: the query is empty; type what to look for, e.g. --text 'wind turbine'"
            )
        vector = self._embed(lambda: self.embedder.embed_text(text, purpose=self.cfg.query_purpose))
        cut = self.cfg.model.text_max_distance if max_distance is None else max_distance
        return self._query(vector, k, filter, {"text": text}, max_distance=cut)

    def image(
        self,
        image: QueryImage,
        *,
        k: int = DEFAULT_K,
        filter: dict[str, Any] | None = None,
        max_distance: float | None = None,
    ) -> SearchResult:
        check_k(k)
        check_max_distance(max_distance)
        vector = self._embed(
            lambda: self.embedder.embed_image(
                purpose=self.cfg.query_purpose,
                image_format=image.format,
                data=image.data,
                s3_uri=image.s3_uri,
            )
        )
        query = {
            "image": image.source,
            "image_format": image.format,
            "image_dimensions": f"{image.width}x{image.height}",
            "image_bytes": image.size,
            "image_sent": "by S3 location" if image.s3_uri else "inline",
        }
        return self._query(vector, k, filter, query, max_distance=self._image_cut(max_distance))

    def image_at(
        self,
        source: str,
        *,
        k: int = DEFAULT_K,
        filter: dict[str, Any] | None = None,
        max_distance: float | None = None,
    ) -> SearchResult:
        """Search with a local file path or an ``s3://`` URI."""
        if is_s3_uri(source):
            image = read_s3_image(source, self.s3, self.cfg)
        else:
            image = read_local_image(source, self.cfg)
        return self.image(image, k=k, filter=filter, max_distance=max_distance)

    def like(
        self,
        uri: str,
        *,
        k: int = DEFAULT_K,
        filter: dict[str, Any] | None = None,
        max_distance: float | None = None,
    ) -> SearchResult:
        """ "More like this": query with the object's *stored* vector, so no model call.

        ``GetVectors`` (``returnData``) on its vector key, then ``QueryVectors`` for one
        more than ``k``; the object itself is left out of the results.
        """
        check_k(k)
        check_max_distance(max_distance)
        try:
            location = parse_s3_uri(uri, "--like")
        except S3UriError as exc:
            raise SearchInputError(str(exc)) from exc
        if not location.key:
            raise SearchInputError(
                f"--like {uri!r}: name an object, e.g. s3://{location.bucket}/photos/cat.jpg"
            )
        vkey = vector_key(location.bucket, location.key)
        found = self.vectors.get([vkey], return_data=True).get(vkey) or {}
        data = found.get("data")
        if not data:
            raise ResourceNotFound(
                f"--like {uri}: no stored vector for that object (vector key {vkey}): not "
                "indexed yet, failed, or deleted; `imgsearch verify` names a recorded failure"
            )
        top = min(k + 1, LIMITS.query_top_k_max)
        result = self._query(
            [float(x) for x in data], top, filter, {"like": uri},
            max_distance=self._image_cut(max_distance), exclude=vkey, k=k,
        )  # fmt: skip
        return result

    def group_duplicates(self, result: SearchResult) -> SearchResult:
        """Fold identical copies into one hit (``Hit.copies``), fetching tied vectors."""

        def fetch(keys: list[str]) -> dict[str, list[float]]:
            found = self.vectors.get(keys, return_data=True)
            return {key: list(entry.get("data") or []) for key, entry in found.items()}

        hits = group_duplicates(result.hits, fetch, self.index.distance_metric)
        return SearchResult(hits, {**result.query, "grouped_duplicates": True})

    def _image_cut(self, max_distance: float | None) -> float:
        return self.cfg.model.image_max_distance if max_distance is None else max_distance

    def is_empty(self) -> bool:
        response = self.vectors.client.list_vectors(
            vectorBucketName=self.index.vector_bucket, indexName=self.index.index, maxResults=1
        )
        return not response.get("vectors")

    # ------------------------------------------------------------------ internals

    def _embed(self, call: Callable[[], list[float]]) -> list[float]:
        try:
            vector = call()
        except EmbeddingError as exc:
            raise EmbeddingFailed(describe_embedding_error(exc, self.cfg.model.model_id)) from exc
        return vector

    def _query(
        self,
        vector: list[float],
        top_k: int,
        filter: dict[str, Any] | None,
        query: dict[str, Any],
        *,
        max_distance: float,
        exclude: str | None = None,
        k: int | None = None,
    ) -> SearchResult:
        k = top_k if k is None else k
        try:
            results = self.vectors.query(vector, top_k=top_k, filter=filter)
        except ClientError as exc:
            if error_code(exc) == "ValidationException" and filter is not None:
                raise FilterError(
                    f"the filter was rejected by S3 Vectors: {error_message(exc)}"
                ) from exc
            raise
        if not results and self.is_empty():
            raise EmptyIndex(
                f"index {self.index.index!r} in vector bucket {self.index.vector_bucket!r} is "
                "empty: nothing has been embedded yet (upload images or run the backfill; "
                "`imgsearch status` shows the queue)"
            )
        query.update(
            k=k,
            filter=filter,
            vector_bucket=self.index.vector_bucket,
            index=self.index.index,
            dimension=self.index.dimension,
            purpose=self.cfg.query_purpose,
            model_id=self.cfg.model.model_id,
            max_distance=max_distance,
        )
        kept = [r for r in results if r.get("key") != exclude][:k]
        return SearchResult(mark_weak(to_hits(kept), max_distance), query)


def describe_embedding_error(exc: EmbeddingError, model_id: str) -> str:
    if exc.reason == ACCESS_DENIED:
        return (
            f"Bedrock refused {model_id} ({exc.detail}): enable model access for it in the "
            "Bedrock console of this region and check the IAM permission bedrock:InvokeModel"
        )
    if exc.reason == MODEL_NOT_FOUND:
        return f"Bedrock has no model {model_id} here ({exc.detail}): check --region"
    return f"embedding the query failed: {exc.reason}: {exc.detail}"


__all__ = [
    "DEFAULT_K",
    "Hit",
    "IndexInfo",
    "QueryImage",
    "SearchResult",
    "Searcher",
    "check_k",
    "check_max_distance",
    "describe_index",
    "image_from_bytes",
    "read_local_image",
    "read_s3_image",
    "to_hits",
]
