"""What the index holds: paging through ``ListVectors``, and the object each vector came from.

``verify`` (orphans) and ``delete --scan-index`` walk the index; search results and
both of those name a vector's source object from its metadata (``source_of``, whose
home is the core's :mod:`imgsearch.hits`, re-exported here for them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from imgsearch.hits import source_of
from imgsearch.vectors import VectorIndex

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


__all__ = ["LIST_PAGE_MAX", "list_vectors", "source_of"]
