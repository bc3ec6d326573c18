"""Vector metadata and the S3 Vectors limits, enforced in this one place; the S3 Vectors edge.

Metadata written for every image (``build_metadata``):

=================  ==============  ==================================================
key                kind            value
=================  ==============  ==================================================
source_bucket      filterable      bucket name
source_key         filterable      object key (see the long-key rule below)
prefix             filterable      the key's folder with a trailing ``/`` ("" at root)
folders            filterable      list of every ancestor folder, each with its ``/``
                                   (``a/b/c.jpg``: ``["a/", "a/b/"]``); absent at the root
format             filterable      ``jpeg`` / ``png`` / ``gif`` / ``webp`` (sniffed)
width, height      filterable      pixels, from the image header
size               filterable      bytes
etag               filterable      the object's ETag (no quotes): the "unchanged" check
ingested_at        filterable      ISO-8601 UTC time of embedding
ingested_epoch     filterable      the same time as whole seconds since 1970 (UTC): a number
modified_epoch     filterable      the object's LastModified, whole seconds since 1970 (UTC)
model_id           filterable      Bedrock model that made the vector
s3_uri             non-filterable  ``s3://bucket/key``, always present
source_key_full    non-filterable  the full key, only when the long-key rule applied
=================  ==============  ==================================================

``folders`` exists because S3 Vectors filters match whole values, never prefixes,
but ``$eq`` on a list matches any element: ``{"folders": {"$eq": "a/"}}`` is "under
``a/``". A root-level key gets no ``folders`` at all rather than ``[]``: the guide does
not say that an empty list is accepted. The epochs exist because range filters
(``$gt``...) take numbers only, and ``ingested_at`` is text.

S3 Vectors (GA) allows 2 KB of filterable metadata per vector. Its exact accounting is
not published, so the filterable part is measured here as its compact UTF-8 JSON,
which over-counts (quotes, commas, braces). **Long-key rule**: while the filterable
part would exceed the budget, keys are dropped in this order:

1. ``folders`` (the deep keys that need this repeat the key several times), whole: a
   shortened list would answer "not under ``a/b/``" for an image that is;
2. ``source_key``, kept in full as non-filterable ``source_key_full``;
3. ``prefix``.

Truncating a value instead would be useless, for the same whole-value reason. What
was dropped is never silent: :func:`dropped_keys` names it and the embedder logs it
with the outcome (``metadata_dropped``). The write never fails because of a key: the
vector stays searchable by similarity and its ``s3_uri`` always names the object.

Other limits enforced before any write (``validate_vector`` / ``validate_metadata``):
40 KB total metadata, 50 keys, finite values only (no NaN/Infinity), the index's
dimension, and no all-zero vector in a cosine index (its cosine distance is undefined).
``put_batches`` splits a ``PutVectors`` by count (500) *and* by JSON request size
(20 MiB): at 3072 dimensions 500 vectors can exceed 20 MiB.

Throttling of S3 Vectors calls is retried by botocore (give the client
``retries={"mode": "standard"}`` or ``"adaptive"``); errors that survive those retries
propagate to the caller.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from imgsearch.images import ImageInfo
from imgsearch.limits import LIMITS

if TYPE_CHECKING:
    from mypy_boto3_s3vectors import S3VectorsClient
    from mypy_boto3_s3vectors.type_defs import PutInputVectorTypeDef

S3_URI = "s3_uri"
SOURCE_KEY_FULL = "source_key_full"
SOURCE_KEY = "source_key"
PREFIX = "prefix"
FOLDERS = "folders"
MODIFIED_EPOCH = "modified_epoch"
INGESTED_EPOCH = "ingested_epoch"
NON_FILTERABLE_KEYS: tuple[str, ...] = (S3_URI, SOURCE_KEY_FULL)
"""Metadata keys the index declares non-filterable (the stack and the local cloud read this)."""
FILTERABLE_KEYS: tuple[str, ...] = (
    "source_bucket",
    SOURCE_KEY,
    PREFIX,
    FOLDERS,
    "format",
    "width",
    "height",
    "size",
    "etag",
    "ingested_at",
    INGESTED_EPOCH,
    MODIFIED_EPOCH,
    "model_id",
)
NUMERIC_KEYS: tuple[str, ...] = ("width", "height", "size", INGESTED_EPOCH, MODIFIED_EPOCH)
"""Filterable keys holding numbers (the others hold text): what ``$gt``/``$lt`` filters can use."""

# Stable machine reasons (logged and used as a metric dimension: never rename).
ZERO_VECTOR = "zero_vector"
NON_FINITE = "non_finite_vector"
WRONG_DIMENSION = "wrong_dimension"
METADATA_TOO_LARGE = "metadata_too_large"
TOO_MANY_KEYS = "too_many_metadata_keys"
BAD_KEY = "bad_vector_key"

# Upper bound of one float in the request JSON: repr of a double is at most 24
# characters ("-2.2250738585072014e-308"), plus botocore's ", " separator.
_FLOAT_JSON_MAX = 26
_ENVELOPE_BYTES = 1024
"""Room for the request's own JSON (bucket and index names, brackets)."""


class VectorRejected(ValueError):
    """A vector or its metadata breaks an S3 Vectors rule; writing it would fail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VectorRecord:
    key: str
    data: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The ``PutVectors`` entry for this record."""
        data = self.data if isinstance(self.data, list) else list(self.data)
        return {"key": self.key, "data": {"float32": data}, "metadata": dict(self.metadata)}


# --------------------------------------------------------------------------- metadata


def key_prefix(key: str) -> str:
    """The key's folder, with its trailing slash ("" for a key at the bucket root)."""
    cut = key.rfind("/")
    return key[: cut + 1] if cut >= 0 else ""


def key_folders(key: str) -> list[str]:
    """Every ancestor folder of ``key``, shallowest first (``a/b/c.jpg``: ``["a/", "a/b/"]``)."""
    parts = key.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def epoch_seconds(value: datetime | str) -> int:
    """Whole seconds since 1970 UTC of a datetime (naive = UTC) or an ISO-8601 text."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def json_bytes(value: Any) -> int:
    """Size of ``value`` as compact UTF-8 JSON: how metadata limits are measured here."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def request_bytes(value: Any) -> int:
    """Size of ``value`` in a request body, serialised the way botocore does it."""
    return len(json.dumps(value))


def build_metadata(
    *,
    bucket: str,
    key: str,
    image: ImageInfo,
    size: int,
    etag: str,
    model_id: str,
    ingested_at: str,
    ingested_epoch: int | None = None,
    modified_epoch: int | None = None,
) -> dict[str, Any]:
    """Metadata for one image's vector, applying the long-key rule (module docstring).

    An epoch given as None is left out (a caller that does not know the time).
    """
    filterable: dict[str, Any] = {
        "source_bucket": bucket,
        SOURCE_KEY: key,
        PREFIX: key_prefix(key),
        FOLDERS: key_folders(key),
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "size": size,
        "etag": etag,
        "ingested_at": ingested_at,
        INGESTED_EPOCH: ingested_epoch,
        MODIFIED_EPOCH: modified_epoch,
        "model_id": model_id,
    }
    filterable = {k: v for k, v in filterable.items() if v is not None and v != []}
    non_filterable: dict[str, Any] = {S3_URI: f"s3://{bucket}/{key}"}
    budget = LIMITS.filterable_metadata_max_bytes
    for droppable in LONG_KEY_DROPS:
        if json_bytes(filterable) <= budget:
            break
        if filterable.pop(droppable, None) is not None and droppable == SOURCE_KEY:
            non_filterable[SOURCE_KEY_FULL] = key
    metadata = {**filterable, **non_filterable}
    validate_metadata(metadata)
    return metadata


LONG_KEY_DROPS: tuple[str, ...] = (FOLDERS, SOURCE_KEY, PREFIX)
"""What the long-key rule drops, in order, while the filterable part is over budget."""


def dropped_keys(metadata: Mapping[str, Any], key: str) -> list[str]:
    """The keys the long-key rule dropped from ``key``'s metadata (empty: none)."""
    dropped = [k for k in (SOURCE_KEY, PREFIX) if k not in metadata]
    if key_folders(key) and FOLDERS not in metadata:
        dropped.insert(0, FOLDERS)
    return dropped


def validate_metadata(metadata: Mapping[str, Any]) -> None:
    """Raise :class:`VectorRejected` if ``metadata`` breaks an S3 Vectors metadata limit."""
    if len(metadata) > LIMITS.metadata_max_keys:
        raise VectorRejected(
            TOO_MANY_KEYS,
            f"{len(metadata)} metadata keys; S3 Vectors allows {LIMITS.metadata_max_keys}",
        )
    filterable = {k: v for k, v in metadata.items() if k not in NON_FILTERABLE_KEYS}
    size = json_bytes(filterable)
    if size > LIMITS.filterable_metadata_max_bytes:
        raise VectorRejected(
            METADATA_TOO_LARGE,
            f"filterable metadata is {size} bytes; S3 Vectors allows "
            f"{LIMITS.filterable_metadata_max_bytes}",
        )
    total = json_bytes(dict(metadata))
    if total > LIMITS.total_metadata_max_bytes:
        raise VectorRejected(
            METADATA_TOO_LARGE,
            f"metadata is {total} bytes; S3 Vectors allows {LIMITS.total_metadata_max_bytes}",
        )


def stored_etag(entry: Mapping[str, Any] | None) -> str | None:
    """The ``etag`` recorded with a stored vector (``VectorIndex.get`` entry), if any."""
    if not entry:
        return None
    value = (entry.get("metadata") or {}).get("etag")
    return str(value) if value is not None else None


# --------------------------------------------------------------------------- vectors


def validate_vector(
    data: Sequence[float], *, dimension: int | None = None, distance_metric: str = "cosine"
) -> None:
    """Raise :class:`VectorRejected` if S3 Vectors would refuse (or mis-rank) ``data``."""
    if dimension is not None and len(data) != dimension:
        raise VectorRejected(
            WRONG_DIMENSION, f"vector has {len(data)} dimensions; the index has {dimension}"
        )
    if not all(map(math.isfinite, data)):  # not fsum: it raises on inf + -inf
        bad = next(i for i, x in enumerate(data) if not math.isfinite(x))
        raise VectorRejected(NON_FINITE, f"vector element {bad} is {data[bad]!r}")
    if distance_metric == "cosine" and not any(data):
        raise VectorRejected(
            ZERO_VECTOR, "an all-zero vector has no cosine distance; S3 Vectors rejects it"
        )


def validate_record(
    record: VectorRecord, *, dimension: int | None = None, distance_metric: str = "cosine"
) -> None:
    if not record.key or len(record.key) > LIMITS.vector_key_max_chars:
        raise VectorRejected(
            BAD_KEY, f"vector keys must be 1..{LIMITS.vector_key_max_chars} characters"
        )
    validate_vector(record.data, dimension=dimension, distance_metric=distance_metric)
    validate_metadata(record.metadata)


def put_batches(
    records: Sequence[VectorRecord],
    *,
    max_count: int = LIMITS.put_vectors_max_vectors,
    max_bytes: int = LIMITS.put_vectors_max_request_bytes,
) -> Iterator[list[dict[str, Any]]]:
    """``PutVectors`` entry lists within the count and the request-size limits.

    Sizes are exact (JSON-encoded) unless a cheap upper bound already shows the
    whole batch fits, which is the common case of a few vectors.
    """
    entries = [r.to_api() for r in records]
    bound = _ENVELOPE_BYTES + sum(
        len(e["data"]["float32"]) * _FLOAT_JSON_MAX
        + request_bytes(e["metadata"])
        + request_bytes(e["key"])
        + 64
        for e in entries
    )
    if bound <= max_bytes:
        for start in range(0, len(entries), max_count):
            yield entries[start : start + max_count]
        return
    batch: list[dict[str, Any]] = []
    used = _ENVELOPE_BYTES
    for entry in entries:
        size = request_bytes(entry) + 2
        if size + _ENVELOPE_BYTES > max_bytes:
            raise VectorRejected(
                METADATA_TOO_LARGE,
                f"vector {entry['key']!r} alone is {size} bytes of request; "
                f"PutVectors allows {max_bytes}",
            )
        if batch and (len(batch) >= max_count or used + size > max_bytes):
            yield batch
            batch, used = [], _ENVELOPE_BYTES
        batch.append(entry)
        used += size
    if batch:
        yield batch


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# --------------------------------------------------------------------------- the edge


class VectorIndex:
    """One S3 Vectors index: put / get / delete by key, and query.

    ``dimension`` and ``distance_metric`` (optional) let :meth:`put` check vectors
    against the index before writing anything.
    """

    def __init__(
        self,
        client: S3VectorsClient,
        vector_bucket: str,
        index: str,
        *,
        dimension: int | None = None,
        distance_metric: str = "cosine",
    ) -> None:
        self.client = client
        self.vector_bucket = vector_bucket
        self.index = index
        self.dimension = dimension
        self.distance_metric = distance_metric

    def _where(self) -> dict[str, str]:
        return {"vectorBucketName": self.vector_bucket, "indexName": self.index}

    def put(self, vectors: Sequence[VectorRecord]) -> None:
        """Write ``vectors`` (overwriting same keys), split by count and request size."""
        for record in vectors:
            validate_record(record, dimension=self.dimension, distance_metric=self.distance_metric)
        for batch in put_batches(vectors):
            self.client.put_vectors(
                **self._where(), vectors=cast("list[PutInputVectorTypeDef]", batch)
            )

    def get(self, keys: Sequence[str], *, return_data: bool = False) -> dict[str, dict[str, Any]]:
        """Stored vectors by key (missing keys are absent): ``{"key","metadata",("data")}``."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), LIMITS.get_vectors_max_keys):
            response = self.client.get_vectors(
                **self._where(), keys=chunk, returnMetadata=True, returnData=return_data
            )
            for vector in response.get("vectors") or []:
                entry: dict[str, Any] = {
                    "key": vector["key"],
                    "metadata": vector.get("metadata") or {},
                }
                if return_data and vector.get("data") is not None:
                    entry["data"] = vector["data"].get("float32")
                found[vector["key"]] = entry
        return found

    def delete(self, keys: Sequence[str]) -> None:
        """Delete vectors by key (absent keys are fine), in requests of 500."""
        for chunk in _chunks(list(dict.fromkeys(keys)), LIMITS.delete_vectors_max_keys):
            self.client.delete_vectors(**self._where(), keys=chunk)

    def query(
        self,
        vector: Sequence[float],
        *,
        top_k: int,
        filter: dict[str, Any] | None = None,
        return_metadata: bool = True,
        return_distance: bool = True,
    ) -> list[dict[str, Any]]:
        """Nearest vectors: ``[{"key", "distance"?, "metadata"?}]``, closest first.

        Above the service's page size the results come in pages: the same request is
        sent again with each ``nextToken`` until the token is absent or ``top_k``
        results are in (S3 User Guide, "Querying vectors"). A key seen on an earlier
        page is not repeated (writes between pages may move a vector).
        """
        if not 1 <= top_k <= LIMITS.query_top_k_max:
            raise ValueError(f"top_k must be 1..{LIMITS.query_top_k_max}, got {top_k}")
        validate_vector(vector, dimension=self.dimension, distance_metric=self.distance_metric)
        request: dict[str, Any] = {
            **self._where(),
            "queryVector": {"float32": list(vector)},
            "topK": top_k,
            "returnMetadata": return_metadata,
            "returnDistance": return_distance,
        }
        if filter:
            request["filter"] = filter
        results: dict[str, dict[str, Any]] = {}
        while True:
            response = self.client.query_vectors(**request)
            for hit in response.get("vectors") or []:
                results.setdefault(str(hit["key"]), dict(hit))
            token = response.get("nextToken")
            if not token or len(results) >= top_k:
                break
            request["nextToken"] = token
        return list(results.values())[:top_k]
