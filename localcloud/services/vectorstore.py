"""The S3 Vectors data plane of the local cloud: PutVectors, GetVectors, ListVectors,
DeleteVectors and QueryVectors over one index, with the service's validation.

moto 5.2 keeps vector buckets and indexes (the control plane) but stores vectors as Python
lists, validates little, has no ``QueryVectors`` and walks every vector on ``GetVectors``.
Here each index's vectors live in one float32 matrix (a row per key, rows reused after
deletes), so a put or get is O(1) per vector and a query is one matrix product: exact
top-k, cosine distance (1 - cosine similarity) or euclidean distance.

Request validation follows the documented limits in :data:`imgsearch.limits.LIMITS` and
answers ``ValidationException`` like the service: wrong dimension, NaN/infinite values,
zero vectors in a cosine index, too many vectors, metadata over the size or key limits.
``QueryVectors`` answers in pages of ``LIMITS.query_page_max_results`` with a
``nextToken``, as the service does when topK exceeds its page size (S3 User Guide,
"Querying vectors"): a caller that ignores the token gets only the first page. The
results are ranked once, on the first request; a token must come back with the same
``queryVector``, ``topK`` and ``filter`` and expires after ``QUERY_TOKEN_SECONDS``.
Metadata sizes are measured as the UTF-8 length of the compact JSON of each key and
value (a list as its whole JSON array); the service does not document its exact byte
accounting. Values are strings, numbers, booleans or lists of them, as the guide lists;
an empty list, which it does not mention, is refused rather than guessed at.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imgsearch.limits import LIMITS
from localcloud.services.errors import validation
from localcloud.services.metadata_filter import compile_filter

LIST_DEFAULT_MAX_RESULTS = 500
LIST_MAX_RESULTS = 1000
SEGMENT_COUNT_MAX = 16
QUERY_TOKEN_SECONDS = 300
"""How long a QueryVectors token stays valid ("several minutes" in the S3 User Guide)."""
QUERY_SESSIONS_MAX = 256
"""Unfinished paged queries kept per index; the oldest is dropped beyond this."""


def metadata_sizes(metadata: Mapping[str, Any], non_filterable: frozenset[str]) -> tuple[int, int]:
    """(filterable bytes, total bytes) of one vector's metadata."""
    filterable = total = 0
    for key, value in metadata.items():
        size = len(key.encode()) + len(
            json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        )
        total += size
        if key not in non_filterable:
            filterable += size
    return filterable, total


def _check_metadata(key: str, metadata: Any, non_filterable: frozenset[str]) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise validation(f"Invalid record for key '{key}': metadata must be a JSON object")
    if len(metadata) > LIMITS.metadata_max_keys:
        raise validation(
            f"Invalid record for key '{key}': metadata has {len(metadata)} keys, "
            f"more than the limit of {LIMITS.metadata_max_keys}"
        )
    for name, value in metadata.items():
        if value == []:
            raise validation(
                f"Invalid record for key '{key}': metadata value for '{name}' is an empty list; "
                "leave the key out instead (the S3 Vectors guide does not document empty lists)"
            )
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str | bool | int | float) or (
                isinstance(item, float) and not math.isfinite(item)
            ):
                raise validation(
                    f"Invalid record for key '{key}': metadata value for '{name}' must be a "
                    "string, number, boolean or a list of them"
                )
    filterable, total = metadata_sizes(metadata, non_filterable)
    if filterable > LIMITS.filterable_metadata_max_bytes:
        raise validation(
            f"Invalid record for key '{key}': filterable metadata is {filterable} bytes, over "
            f"the limit of {LIMITS.filterable_metadata_max_bytes} bytes"
        )
    if total > LIMITS.total_metadata_max_bytes:
        raise validation(
            f"Invalid record for key '{key}': metadata is {total} bytes, over the limit of "
            f"{LIMITS.total_metadata_max_bytes} bytes"
        )
    return dict(metadata)


def _check_vector(data: Any, dimension: int, metric: str, what: str) -> NDArray[np.float32]:
    if not isinstance(data, dict) or "float32" not in data or len(data) != 1:
        raise validation(f"{what}: data must be {{'float32': [...]}}")
    values = data["float32"]
    if not isinstance(values, list):
        raise validation(f"{what}: float32 must be a list of numbers")
    if len(values) != dimension:
        raise validation(
            f"{what}: vector must have length {dimension}, but has length {len(values)}"
        )
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise validation(f"{what}: float32 must be a list of numbers") from exc
    if not np.all(np.isfinite(array)):
        raise validation(f"{what}: vector contains NaN or infinite values")
    if metric == "cosine" and not np.any(array):
        raise validation(f"{what}: a zero vector has no direction; cosine distance is undefined")
    return array


@dataclass
class _Listing:
    keys: list[str]
    position: int = 0


_Ranked = list[tuple[str, float, dict[str, Any]]]
"""A ranked query's results: (key, distance, metadata), closest first."""


@dataclass
class _QueryPages:
    """The rest of a ranked query, for the requests that bring its ``nextToken``."""

    fingerprint: str
    results: _Ranked
    expires: float
    position: int = 0


def _query_fingerprint(request: Mapping[str, Any]) -> str:
    """What a follow-up request must repeat: ``queryVector``, ``topK`` and ``filter``."""
    return json.dumps(
        [request.get("queryVector"), request.get("topK"), request.get("filter")],
        sort_keys=True,
        default=str,
    )


@dataclass
class IndexData:
    """The vectors of one index. Thread-safe (the front server is threaded)."""

    dimension: int
    distance_metric: str
    non_filterable: frozenset[str] = frozenset()
    page_size: int = LIMITS.query_page_max_results
    _rows: dict[str, int] = field(default_factory=dict)
    _keys: list[str | None] = field(default_factory=list)
    _metadata: list[dict[str, Any]] = field(default_factory=list)
    _free: list[int] = field(default_factory=list)
    _matrix: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    _alive: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    _listings: dict[str, _Listing] = field(default_factory=dict)
    _queries: dict[str, _QueryPages] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._matrix = np.zeros((64, self.dimension), np.float32)
        self._alive = np.zeros(64, bool)

    def __len__(self) -> int:
        return len(self._rows)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._rows)

    # ------------------------------------------------------------------ writes

    def put(self, request: Mapping[str, Any]) -> dict[str, Any]:
        vectors = request.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            raise validation("vectors: at least one vector is required")
        if len(vectors) > LIMITS.put_vectors_max_vectors:
            raise validation(
                f"vectors: {len(vectors)} vectors in one request, more than the limit of "
                f"{LIMITS.put_vectors_max_vectors}"
            )
        checked: list[tuple[str, NDArray[np.float32], dict[str, Any]]] = []
        for i, item in enumerate(vectors):
            if not isinstance(item, dict):
                raise validation(f"vectors[{i}]: must be an object")
            key = item.get("key")
            if not isinstance(key, str) or not 1 <= len(key) <= LIMITS.vector_key_max_chars:
                raise validation(
                    f"vectors[{i}].key: must be a string of 1..{LIMITS.vector_key_max_chars} "
                    "characters"
                )
            array = _check_vector(
                item.get("data"),
                self.dimension,
                self.distance_metric,
                f"Invalid record for key '{key}'",
            )
            checked.append(
                (key, array, _check_metadata(key, item.get("metadata"), self.non_filterable))
            )
        with self._lock:
            for key, array, metadata in checked:
                row = self._rows.get(key)
                if row is None:
                    row = self._allocate()
                    self._rows[key] = row
                    self._keys[row] = key
                self._matrix[row] = array
                self._metadata[row] = metadata
                self._alive[row] = True
        return {}

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        row = len(self._keys)
        if row >= self._matrix.shape[0]:
            grown = np.zeros((self._matrix.shape[0] * 2, self.dimension), np.float32)
            grown[:row] = self._matrix[:row]
            self._matrix = grown
            alive = np.zeros(grown.shape[0], bool)
            alive[:row] = self._alive[:row]
            self._alive = alive
        self._keys.append(None)
        self._metadata.append({})
        return row

    def delete(self, request: Mapping[str, Any]) -> dict[str, Any]:
        keys = _keys_param(request, LIMITS.delete_vectors_max_keys)
        with self._lock:
            for key in keys:
                row = self._rows.pop(key, None)
                if row is not None:
                    self._keys[row] = None
                    self._metadata[row] = {}
                    self._matrix[row] = 0.0
                    self._alive[row] = False
                    self._free.append(row)
        return {}

    # ------------------------------------------------------------------ reads

    def _entry(self, row: int, data: bool, metadata: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": self._keys[row]}
        if data:
            entry["data"] = {"float32": [float(x) for x in self._matrix[row]]}
        if metadata:
            entry["metadata"] = self._metadata[row]
        return entry

    def get(self, request: Mapping[str, Any]) -> dict[str, Any]:
        keys = _keys_param(request, LIMITS.get_vectors_max_keys)
        data, metadata = bool(request.get("returnData")), bool(request.get("returnMetadata"))
        with self._lock:
            rows = [self._rows[k] for k in dict.fromkeys(keys) if k in self._rows]
            return {"vectors": [self._entry(r, data, metadata) for r in rows]}

    def list(self, request: Mapping[str, Any]) -> dict[str, Any]:
        max_results = request.get("maxResults", LIST_DEFAULT_MAX_RESULTS)
        if not isinstance(max_results, int) or not 1 <= max_results <= LIST_MAX_RESULTS:
            raise validation(f"maxResults: must be between 1 and {LIST_MAX_RESULTS}")
        count = request.get("segmentCount")
        index = request.get("segmentIndex")
        if (count is None) != (index is None):
            raise validation("segmentCount and segmentIndex must be given together")
        if count is not None and (
            not isinstance(count, int)
            or not 1 <= count <= SEGMENT_COUNT_MAX
            or not isinstance(index, int)
            or not 0 <= index < count
        ):
            raise validation(
                f"segmentCount must be 1..{SEGMENT_COUNT_MAX} and segmentIndex 0..segmentCount-1"
            )
        data, metadata = bool(request.get("returnData")), bool(request.get("returnMetadata"))
        token = request.get("nextToken")
        with self._lock:
            if token:
                listing = self._listings.get(str(token))
                if listing is None:
                    raise validation("nextToken: the token is invalid or has expired")
            else:
                keys = sorted(self._rows)
                if count:
                    keys = [k for k in keys if _segment(k, count) == index]
                listing = _Listing(keys)
                token = uuid.uuid4().hex
            page: list[dict[str, Any]] = []
            while listing.position < len(listing.keys) and len(page) < max_results:
                key = listing.keys[listing.position]
                listing.position += 1
                row = self._rows.get(key)
                if row is not None:
                    page.append(self._entry(row, data, metadata))
            out: dict[str, Any] = {"vectors": page}
            if listing.position < len(listing.keys):
                self._listings[str(token)] = listing
                out["nextToken"] = str(token)
            else:
                self._listings.pop(str(token), None)
            return out

    def query(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if request.get("queryTexts"):
            raise validation(
                "queryTexts: full-text and hybrid search are not supported by the local cloud"
            )
        top_k = request.get("topK")
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise validation("topK: must be an integer of at least 1")
        if top_k > LIMITS.query_top_k_max:
            raise validation(
                f"topK: {top_k} is over the limit of {LIMITS.query_top_k_max} results per query"
            )
        if "queryVector" not in request:
            raise validation("queryVector: required for a vector search")
        query = _check_vector(
            request.get("queryVector"), self.dimension, self.distance_metric, "queryVector"
        )
        want_distance = bool(request.get("returnDistance"))
        want_metadata = bool(request.get("returnMetadata"))
        token = request.get("nextToken")
        if token is not None:
            pages = self._resume(str(token), request)
        else:
            predicate = None
            if request.get("filter") is not None:
                predicate = compile_filter(request["filter"], self.non_filterable)
            pages = _QueryPages(
                _query_fingerprint(request),
                self._rank(query, top_k, predicate),
                time.monotonic() + QUERY_TOKEN_SECONDS,
            )
        page = pages.results[pages.position : pages.position + self.page_size]
        pages.position += len(page)
        out: dict[str, Any] = {"vectors": [], "distanceMetric": self.distance_metric}
        for key, distance, metadata in page:
            entry: dict[str, Any] = {"key": key}
            if want_distance:
                entry["distance"] = distance
            if want_metadata:
                entry["metadata"] = metadata
            out["vectors"].append(entry)
        with self._lock:
            if pages.position < len(pages.results):
                while len(self._queries) >= QUERY_SESSIONS_MAX:
                    self._queries.pop(next(iter(self._queries)))
                next_token = uuid.uuid4().hex
                self._queries[next_token] = pages
                out["nextToken"] = next_token
        return out

    def _resume(self, token: str, request: Mapping[str, Any]) -> _QueryPages:
        fingerprint = _query_fingerprint(request)
        with self._lock:
            pages = self._queries.get(token)
            if pages is None or pages.expires < time.monotonic():
                self._queries.pop(token, None)
                raise validation(
                    "nextToken: the token is invalid or has expired; re-issue the query"
                )
            if pages.fingerprint != fingerprint:
                raise validation(
                    "nextToken: the request must repeat the queryVector, topK and filter of "
                    "the query that returned the token"
                )
            del self._queries[token]  # one page per token: the next one has its own
        return pages

    def _rank(self, query: NDArray[np.float32], top_k: int, predicate: Any) -> _Ranked:
        """The ``top_k`` nearest live vectors passing ``predicate``: (key, distance, metadata)."""
        with self._lock:
            n = len(self._keys)
            if n == 0 or not self._rows:
                return []
            matrix = self._matrix[:n]
            alive = self._alive[:n].copy()
            if predicate is not None:
                alive &= np.array(
                    [
                        k is not None and predicate(self._metadata[i])
                        for i, k in enumerate(self._keys)
                    ],
                    dtype=bool,
                )
            distances = _distances(matrix, query, self.distance_metric)
            distances[~alive] = np.inf
            k = min(top_k, int(alive.sum()))
            if k == 0:
                return []
            best = np.argpartition(distances, k - 1)[:k]
            best = best[np.argsort(distances[best], kind="stable")]
            return [
                (str(self._keys[row]), float(distances[row]), self._metadata[row]) for row in best
            ]


def _distances(
    matrix: NDArray[np.float32], query: NDArray[np.float32], metric: str
) -> NDArray[np.float64]:
    m = matrix.astype(np.float64, copy=False)
    q = query.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            sims = np.where(norms > 0, (m @ q) / norms, 0.0)
        return np.asarray(1.0 - sims, dtype=np.float64)
    return np.asarray(np.linalg.norm(m - q, axis=1), dtype=np.float64)


def _keys_param(request: Mapping[str, Any], limit: int) -> list[str]:
    keys = request.get("keys")
    if not isinstance(keys, list) or not keys:
        raise validation("keys: at least one key is required")
    if len(keys) > limit:
        raise validation(f"keys: {len(keys)} keys in one request, more than the limit of {limit}")
    for key in keys:
        if not isinstance(key, str) or not 1 <= len(key) <= LIMITS.vector_key_max_chars:
            raise validation(
                f"keys: each key must be a string of 1..{LIMITS.vector_key_max_chars} characters"
            )
    return keys


def _segment(key: str, count: int) -> int:
    return int.from_bytes(key.encode()[:8].ljust(8, b"\0"), "big") % count


__all__ = ["IndexData", "metadata_sizes"]
