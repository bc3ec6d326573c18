"""Search hits: flattened from ``QueryVectors`` results, the weak-match cut and "+N copies".

Beside :mod:`imgsearch.search`, so the search API, the CLI and the web page share one
rule; :func:`source_of` names the object a vector came from (also for ``verify``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from imgsearch.s3uri import S3UriError, is_s3_uri, parse_s3_uri
from imgsearch.vectors import S3_URI, SOURCE_KEY_FULL


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


@dataclass(frozen=True)
class Hit:
    """One search result, flattened from the vector's metadata."""

    rank: int
    vector_key: str
    distance: float | None
    uri: str | None
    bucket: str | None
    key: str | None
    size: int | None
    width: int | None
    height: int | None
    format: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    weak: bool = False
    """Farther than the query's ``max_distance``: a weak match."""
    copies: tuple[str, ...] = ()
    """Identical copies folded into this hit (``group_duplicates``)."""

    @property
    def dimensions(self) -> str | None:
        if self.width is None or self.height is None:
            return None
        return f"{self.width}x{self.height}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dimensions"] = self.dimensions
        return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def to_hits(results: list[dict[str, Any]]) -> list[Hit]:
    hits = []
    for rank, item in enumerate(results, start=1):
        metadata = dict(item.get("metadata") or {})
        bucket, key = source_of(metadata)
        uri = metadata.get(S3_URI) or (f"s3://{bucket}/{key}" if bucket and key else None)
        distance = item.get("distance")
        hits.append(
            Hit(
                rank=rank,
                vector_key=str(item.get("key")),
                distance=float(distance) if isinstance(distance, int | float) else None,
                uri=str(uri) if uri else None,
                bucket=bucket,
                key=key,
                size=_int(metadata.get("size")),
                width=_int(metadata.get("width")),
                height=_int(metadata.get("height")),
                format=str(metadata["format"]) if metadata.get("format") else None,
                metadata=metadata,
            )
        )
    return hits


SAME_DISTANCE = 1e-6
"""Two hits whose distances to the query differ by more than this cannot be one vector."""
SAME_VECTOR = 1e-6
"""Distance between two stored vectors at or below which they are copies of one image."""


def mark_weak(hits: Sequence[Hit], max_distance: float) -> list[Hit]:
    """Flag the hits farther than ``max_distance``: shown apart as weak matches."""
    return [
        dataclasses.replace(h, weak=h.distance is not None and h.distance > max_distance)
        for h in hits
    ]


def vector_distance(a: Sequence[float], b: Sequence[float], metric: str) -> float:
    """Distance as S3 Vectors measures it: cosine (1 - cos) or euclidean."""
    if metric == "euclidean":
        return math.dist(a, b)
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / norm if norm else 1.0


def group_duplicates(
    hits: Sequence[Hit],
    fetch_vectors: Callable[[list[str]], Mapping[str, Sequence[float]]],
    metric: str,
) -> list[Hit]:
    """Collapse identical copies (same ETag, or the same stored vector) into the best hit.

    Only hits tied on distance to the query can be one vector, so only those are
    fetched (``fetch_vectors``: vector keys to their data) and compared.
    """
    ties = {
        h.vector_key
        for h in hits
        for o in hits
        if h is not o
        and h.distance is not None
        and o.distance is not None
        and abs(h.distance - o.distance) <= SAME_DISTANCE
    }
    vectors = fetch_vectors(sorted(ties)) if ties else {}
    groups: list[tuple[Hit, list[str]]] = []
    for hit in hits:
        for lead, copies in groups:
            if _same(hit, lead, vectors, metric):
                copies.append(hit.uri or hit.vector_key)
                break
        else:
            groups.append((hit, []))
    return [
        dataclasses.replace(lead, rank=rank, copies=tuple(copies))
        for rank, (lead, copies) in enumerate(groups, start=1)
    ]


def _same(a: Hit, b: Hit, vectors: Mapping[str, Sequence[float]], metric: str) -> bool:
    etag: Any = a.metadata.get("etag")
    if etag and etag == b.metadata.get("etag"):
        return True
    va, vb = vectors.get(a.vector_key), vectors.get(b.vector_key)
    return va is not None and vb is not None and vector_distance(va, vb, metric) <= SAME_VECTOR


__all__ = ["Hit", "group_duplicates", "mark_weak", "source_of", "to_hits", "vector_distance"]
