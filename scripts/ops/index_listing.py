"""What the index holds: paging through ``ListVectors``, and the object each vector came from.

``verify`` (orphans) and ``delete --scan-index`` walk the index; search results and
both of those name a vector's source object from its metadata. One home for each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from imgsearch.s3uri import S3UriError, is_s3_uri, parse_s3_uri
from imgsearch.vectors import S3_URI, SOURCE_KEY_FULL, VectorIndex

if TYPE_CHECKING:
    from mypy_boto3_s3vectors import S3VectorsClient

LIST_PAGE_MAX = 1000
"""``ListVectors``'s largest page."""


def list_vectors(
    index: VectorIndex,
    *,
    segment: tuple[int, int] | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every vector (with metadata) of the index, or of one ``(count, index)`` segment."""
    kwargs: dict[str, Any] = {
        "vectorBucketName": index.vector_bucket,
        "indexName": index.index,
        "returnMetadata": True,
        "maxResults": min(LIST_PAGE_MAX, limit) if limit else LIST_PAGE_MAX,
    }
    if segment is not None:
        kwargs["segmentCount"], kwargs["segmentIndex"] = segment
    client: S3VectorsClient = index.client
    produced = 0
    while True:
        response = client.list_vectors(**kwargs)
        for vector in response.get("vectors") or []:
            yield dict(vector)
            produced += 1
            if limit is not None and produced >= limit:
                return
        token = response.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def source_of(metadata: dict[str, Any]) -> tuple[str | None, str | None]:
    """(bucket, key) of the image a vector was made from, from its metadata.

    ``source_key`` is dropped for very long keys (the long-key rule in
    ``imgsearch.vectors``); ``source_key_full`` and ``s3_uri`` then still name it.
    """
    bucket = metadata.get("source_bucket")
    key = metadata.get(SOURCE_KEY_FULL) or metadata.get("source_key")
    uri = metadata.get(S3_URI)
    if (bucket is None or key is None) and isinstance(uri, str) and is_s3_uri(uri):
        with contextlib.suppress(S3UriError):
            parsed = parse_s3_uri(uri)
            bucket = bucket or parsed.bucket
            key = key or parsed.key
    return (str(bucket) if bucket else None, str(key) if key else None)


__all__ = ["LIST_PAGE_MAX", "list_vectors", "source_of"]
