"""What the search library raises when a query cannot be answered as asked.

Every message is one line that says what is wrong and what to do. Each error also
carries the API's answer to it: a stable ``code`` and the HTTP ``status`` (4xx: the
request's fault, do not retry as is; 429/503: retry later), so the search Lambda shapes
errors from these attributes alone, the web page answers their ``status``, and the CLI's
``run_main`` reports them as one line, exit 2. Pure: standard library only.
"""

from __future__ import annotations

from typing import ClassVar

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})
"""Statuses after which the same request may succeed later."""


class SearchError(Exception):
    """Base of the search library's expected failures."""

    code: ClassVar[str] = "search_failed"
    status: ClassVar[int] = 500

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES


class SearchInputError(SearchError):
    """A query the index cannot take: its k, text, image or distance."""

    code = "invalid_request"
    status = 400


class FilterError(SearchInputError):
    """A ``where``/``filter`` expression S3 Vectors would reject or silently miss."""

    code = "invalid_filter"


class UnsupportedQueryImage(SearchInputError):
    """The query image is not an image the model accepts."""

    code = "unsupported_image"
    status = 415


class QueryImageTooLarge(SearchInputError):
    """The query image is larger than an inline query (or the model) allows."""

    code = "image_too_large"
    status = 413


class BucketNotAllowed(SearchInputError):
    """The request names a bucket the search may not read (only the source bucket)."""

    code = "bucket_not_allowed"
    status = 403


class ResourceNotFound(SearchError):
    """A bucket, index, object or vector the query needs does not exist."""

    code = "not_found"
    status = 404


class IndexMismatch(SearchError):
    """The index holds vectors the configured model cannot produce (a deployment fault)."""

    code = "index_mismatch"
    status = 500


class EmptyIndex(SearchError):
    """Nothing has been embedded into the index yet."""

    code = "index_empty"
    status = 409


class EmbeddingFailed(SearchError):
    """Bedrock would not embed the query (access, model, or a failed call)."""

    code = "embedding_failed"
    status = 502


class EmbeddingThrottled(EmbeddingFailed):
    """Bedrock kept throttling the query's embedding: try again in a moment."""

    code = "throttled"
    status = 429


class EmbeddingUnavailable(EmbeddingFailed):
    """Bedrock did not answer (unavailable, timeout, connection): try again later."""

    code = "model_unavailable"
    status = 503


__all__ = [
    "RETRYABLE_STATUSES",
    "BucketNotAllowed",
    "EmbeddingFailed",
    "EmbeddingThrottled",
    "EmbeddingUnavailable",
    "EmptyIndex",
    "FilterError",
    "IndexMismatch",
    "QueryImageTooLarge",
    "ResourceNotFound",
    "SearchError",
    "SearchInputError",
    "UnsupportedQueryImage",
]
