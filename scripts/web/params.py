"""The search API's query string -> what :class:`imgsearch.search.Searcher` takes.

Common to ``/api/search``, ``/api/search/image`` and ``/api/search/like``::

    k=1..10000          results (LIMITS.query_top_k_max: S3 Vectors' most per query)
    prefix=trips/       the folder and everything below it (as an S3 prefix)
    folder=trips/       that folder only (``/``: the bucket root)
    format=png          jpeg / png / gif / webp
    min_bytes, max_bytes    on the ``size`` metadata (inclusive)
    since, until        YYYY-MM-DD, whole UTC days, inclusive, on ``modified_epoch``
    max_distance=0.6    where weak matches start (default: the model's, per query kind)
    group=1             fold identical copies into one result
    filter={json}       any S3 Vectors filter document, ANDed with the rest

Every bad value raises :class:`SearchInputError` naming the parameter and what to give
(a 400 answer). Folder words are :mod:`imgsearch.search_filters`', the CLI's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from imgsearch.limits import LIMITS
from imgsearch.search import DEFAULT_K
from imgsearch.search_errors import SearchInputError
from imgsearch.search_filters import (
    folder_filter,
    normalise_folder,
    parse_filter_json,
    subtree_filter,
)

FORMATS: tuple[str, ...] = ("jpeg", "png", "gif", "webp")
"""The ``format`` metadata values (as the embedder stores them)."""
SIZE_KEY = "size"
MODIFIED_KEY = "modified_epoch"
"""Seconds since 1970 (UTC) of the object's Last-Modified: a number, so ranges work."""
DAY_SECONDS = 86_400
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class SearchParams:
    k: int
    filter: dict[str, Any] | None
    max_distance: float | None
    group: bool


def search_params(query: QueryParams, source_bucket: str | None = None) -> SearchParams:
    """All the common parameters of one search request, checked."""
    return SearchParams(
        k=parse_k(query.get("k")),
        filter=parse_filter(query, source_bucket),
        max_distance=_max_distance(query.get("max_distance")),
        group=_flag(query.get("group"), "group"),
    )


def parse_k(raw: str | None) -> int:
    text = (raw or "").strip() or str(DEFAULT_K)
    try:
        k = int(text)
    except ValueError:
        raise SearchInputError(f"k {text!r}: expected a whole number of results") from None
    if not 1 <= k <= LIMITS.query_top_k_max:
        raise SearchInputError(
            f"k {k}: use 1..{LIMITS.query_top_k_max} (S3 Vectors' most results per query)"
        )
    return k


def parse_filter(query: QueryParams, source_bucket: str | None = None) -> dict[str, Any] | None:
    """The parameters' filters ANDed into one document; None when there are none."""
    parts: list[dict[str, Any]] = []
    parts.extend(_folders(query, source_bucket))
    image_format = (query.get("format") or "").strip().lower()
    if image_format:
        if image_format == "jpg":
            image_format = "jpeg"
        if image_format not in FORMATS:
            raise SearchInputError(
                f"format {image_format!r}: use one of {', '.join(FORMATS)} (or leave it empty)"
            )
        parts.append({"format": {"$eq": image_format}})
    parts.extend(_range(SIZE_KEY, _bytes(query, "min_bytes"), _bytes(query, "max_bytes")))
    since, until = _day(query, "since"), _day(query, "until")
    if since is not None and until is not None and until < since:
        raise SearchInputError(
            f"until {query['until']}: is before since {query['since']}; swap them"
        )
    parts.extend(
        _range(
            MODIFIED_KEY,
            None if since is None else int(since.timestamp()),
            None if until is None else int((until + timedelta(days=1)).timestamp()) - 1,
        )
    )
    raw = query.get("filter")
    if raw:
        parts.append(parse_filter_json(raw, "filter"))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _folders(query: QueryParams, source_bucket: str | None) -> list[dict[str, Any]]:
    """``prefix``: the folder and everything below (an S3 prefix); ``folder``: that folder
    only. The same words, with the same meanings, as the CLI's ``--where``."""
    parts: list[dict[str, Any]] = []
    prefix = (query.get("prefix") or "").strip()
    if prefix:
        subtree = subtree_filter(normalise_folder(prefix, source_bucket, what="prefix"))
        if subtree:
            parts.append(subtree)
    folder = (query.get("folder") or "").strip()
    if folder:
        exact = normalise_folder(folder, source_bucket, what="folder") or "/"
        only = folder_filter(exact)
        if only:
            parts.append(only)
    return parts


def _range(key: str, low: int | None, high: int | None) -> list[dict[str, Any]]:
    if low is not None and high is not None and high < low:
        raise SearchInputError(f"{key}: the upper bound {high} is below the lower bound {low}")
    ops = {op: v for op, v in (("$gte", low), ("$lte", high)) if v is not None}
    return [{key: ops}] if ops else []


def _bytes(query: QueryParams, name: str) -> int | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise SearchInputError(
            f"{name} {raw!r}: give a whole number of bytes, e.g. 100000"
        ) from None
    if value < 0:
        raise SearchInputError(f"{name} {value}: give 0 or more bytes")
    return value


def _day(query: QueryParams, name: str) -> datetime | None:
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        raise SearchInputError(
            f"{name} {raw!r}: give a day as YYYY-MM-DD, e.g. 2024-05-01"
        ) from None
    return day.replace(tzinfo=UTC)


def _max_distance(raw: str | None) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise SearchInputError(
            f"max_distance {text!r}: give a distance of 0 or more (cosine distances run 0..2)"
        )
    return value


def _flag(raw: str | None, name: str) -> bool:
    text = (raw or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SearchInputError(f"{name} {raw!r}: give 1 (on) or 0 (off)")


__all__ = ["FORMATS", "MODIFIED_KEY", "SearchParams", "parse_filter", "parse_k", "search_params"]
