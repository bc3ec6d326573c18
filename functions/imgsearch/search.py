"""Text and image search over the index: the one code path of the API, the CLI and the web page.

A query is embedded with the pipeline's own :class:`imgsearch.embeddings.Embedder`
(purpose ``cfg.query_purpose``, ``IMAGE_RETRIEVAL`` by default: "find images") and
sent to ``QueryVectors`` through :class:`imgsearch.vectors.VectorIndex`. Before paying
for an embedding, :func:`describe_index` reads the index (``GetIndex``): a wrong bucket
or index name fails with a clear message, and the query is embedded at the *index's*
dimension, so a stack deployed with ``-c dimension=3072`` is searched correctly even
when the local ``cdk.json`` still says 1024. Errors are :mod:`imgsearch.search_errors`;
messages name the inputs as the caller spells them (:class:`Spelling`: ``--k`` on the
command line, ``k`` in the API).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgsearch.aws_errors import error_code, error_message
from imgsearch.bedrock_errors import ACCESS_DENIED, MODEL_NOT_FOUND, THROTTLED
from imgsearch.config import PipelineConfig
from imgsearch.embeddings import Embedder, EmbeddingError
from imgsearch.hits import Hit, group_duplicates, mark_weak, to_hits
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.s3uri import is_s3_uri
from imgsearch.search_errors import (
    EmbeddingFailed,
    EmbeddingThrottled,
    EmbeddingUnavailable,
    EmptyIndex,
    FilterError,
    IndexMismatch,
    ResourceNotFound,
    SearchInputError,
)
from imgsearch.search_images import (
    QueryImage,
    image_from_bytes,
    object_location,
    read_local_image,
    read_s3_image,
)
from imgsearch.vectors import VectorIndex

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

DEFAULT_K = 5


@dataclass(frozen=True)
class Spelling:
    """How the caller names each input in messages."""

    text: str = "--text"
    image: str = "--image"
    like: str = "--like"
    k: str = "--k"
    max_distance: str = "--max-distance"


CLI_SPELLING = Spelling()
API_SPELLING = Spelling("text", "image", "like", "k", "max_distance")


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


# --------------------------------------------------------------------------- searching


@dataclass
class SearchResult:
    hits: list[Hit]
    query: dict[str, Any]
    """What was searched for (text or image, k, filter, index, dimension)."""

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "results": [h.as_dict() for h in self.hits]}


def check_max_distance(value: float | None, name: str = "--max-distance") -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise SearchInputError(
            f"{name} {value}: give a distance of 0 or more (cosine distances run 0..2)"
        )
    return value


def check_k(k: int, name: str = "--k") -> int:
    if not 1 <= k <= LIMITS.query_top_k_max:
        raise SearchInputError(
            f"{name} {k}: S3 Vectors returns 1..{LIMITS.query_top_k_max} results per query; "
            f"pick a k in that range"
        )
    return k


class Searcher:
    """Embeds queries and queries one index. Built once per process (API, web) or command.

    ``allowed_buckets``: the only buckets an image or ``like`` URI may name (the API
    passes the source bucket; None lets the operator's CLI name any). ``check_empty``:
    tell an empty index from a filter that matched nothing (``ListVectors``, which the
    API's role is not granted). ``model_calls`` counts the Bedrock calls made.
    """

    def __init__(
        self,
        cfg: PipelineConfig,
        *,
        bedrock: BedrockRuntimeClient,
        s3vectors: S3VectorsClient,
        s3: S3Client,
        index: IndexInfo,
        spelling: Spelling = CLI_SPELLING,
        allowed_buckets: frozenset[str] | None = None,
        max_attempts: int = 6,
        check_empty: bool = True,
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
        self.spelling = spelling
        self.allowed_buckets = allowed_buckets
        self.check_empty = check_empty
        self.model_calls = 0
        self.embedder = Embedder(bedrock, cfg.model_ref, index.dimension, max_attempts=max_attempts)
        self.vectors = VectorIndex(
            s3vectors,
            index.vector_bucket,
            index.index,
            dimension=index.dimension,
            distance_metric=index.distance_metric,
        )

    def _check(self, k: int, max_distance: float | None) -> None:
        check_k(k, self.spelling.k)
        check_max_distance(max_distance, self.spelling.max_distance)

    def text(
        self,
        text: str,
        *,
        k: int = DEFAULT_K,
        filter: dict[str, Any] | None = None,
        max_distance: float | None = None,
    ) -> SearchResult:
        self._check(k, max_distance)
        if not text.strip():
            raise SearchInputError(
                f"{self.spelling.text}: the query is empty; type what to look for, "
                f"e.g. {self.spelling.text} 'wind turbine'"
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
        self._check(k, max_distance)
        vector = self._embed(
            lambda: self.embedder.embed_image(
                purpose=self.cfg.query_purpose,
                image_format=image.format,
                data=image.data,
                s3_uri=image.s3_uri,
                bucket_owner=image.bucket_owner,
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
        """Search with an ``s3://`` URI (an allowed bucket) or, from the CLI, a local path."""
        self._check(k, max_distance)
        if is_s3_uri(source):
            image = read_s3_image(
                source,
                self.s3,
                self.cfg,
                what=self.spelling.image,
                allowed_buckets=self.allowed_buckets,
            )
        elif self.allowed_buckets is None:
            image = read_local_image(source, self.cfg)
        else:
            raise SearchInputError(
                f"{self.spelling.image}: give the image's bytes (base64) or an s3:// URI"
            )
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
        self._check(k, max_distance)
        name = self.spelling.like
        location = object_location(uri, name, self.allowed_buckets)
        vkey = vector_key(location.bucket, location.key)
        found = self.vectors.get([vkey], return_data=True).get(vkey) or {}
        data = found.get("data")
        if not data:
            raise ResourceNotFound(
                f"{name} {uri}: no stored vector for that object (vector key {vkey}): not "
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
        self.model_calls += 1
        try:
            vector = call()
        except EmbeddingError as exc:
            raise embedding_failure(exc, self.cfg.model.model_id) from exc
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
        if not results and self.check_empty and self.is_empty():
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
        return (
            f"Bedrock has no model {model_id} in this region ({exc.detail}): use a region "
            "that offers it, or an inference profile id"
        )
    if exc.reason == THROTTLED:
        return (
            f"Bedrock is busy: more requests for {model_id} than this account's quota allows "
            "right now"
        )
    return f"embedding the query failed: {exc.reason}: {exc.detail}"


def embedding_failure(exc: EmbeddingError, model_id: str) -> EmbeddingFailed:
    """The search error for a failed embedding: throttled (429), unavailable (503) or not."""
    message = describe_embedding_error(exc, model_id)
    if exc.reason == THROTTLED:
        return EmbeddingThrottled(message + "; try again in a moment")
    if exc.transient:
        return EmbeddingUnavailable(message + "; try again later")
    return EmbeddingFailed(message)


__all__ = [
    "API_SPELLING",
    "CLI_SPELLING",
    "DEFAULT_K",
    "Hit",
    "IndexInfo",
    "QueryImage",
    "SearchResult",
    "Searcher",
    "Spelling",
    "check_k",
    "check_max_distance",
    "describe_embedding_error",
    "describe_index",
    "embedding_failure",
    "image_from_bytes",
    "read_local_image",
    "read_s3_image",
    "to_hits",
]
