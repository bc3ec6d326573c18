"""Search filters: ``where`` words and filter JSON -> an S3 Vectors filter, checked.

The one home of the filter rules: the search API (``where``, ``filter``), the CLI
(``--where``, ``--filter``; its ``run_main`` reports these errors as one line) and the
web page (which answers their ``status``) use them. ``name`` arguments say how the caller spells the
input in messages (``--where`` on the command line, ``where`` in the API).

S3 Vectors filters are JSON documents (``{"format": {"$eq": "png"}}``, ``$and``/``$or``,
``$gt``/``$gte``/``$lt``/``$lte`` on numbers, ``$in``/``$nin``, ``$exists``). Typing
them on a command line is error-prone, so ``--where`` takes the common cases::

    --where prefix=trips/       everything under trips/ (subfolders too), as an S3 prefix:
                                {"$or": [{"folders": {"$eq": "trips/"}},
                                         {"prefix": {"$eq": "trips/"}}]}
    --where folder=trips/       only the images directly in trips/: {"prefix": {"$eq": "trips/"}}
    --where format!=gif         {"format": {"$ne": "gif"}}
    --where width>=1024         {"width": {"$gte": 1024}}
    --where modified_epoch>=1714521600   modified since 2024-05-01 (seconds since 1970, UTC)

Several ``--where`` (and a ``--filter``) are ANDed. Keys are checked against the
metadata the embedder writes (``imgsearch.vectors``): a typo would otherwise match
nothing and look like "no results".

Folders. S3 Vectors matches whole values and has no starts-with operator, but ``$eq``
on a list-valued key matches any element. So the embedder stores ``prefix`` (the
image's own folder, ``trips/2024/`` for ``trips/2024/a.jpg``) and ``folders`` (every
ancestor: ``["trips/", "trips/2024/"]``). ``prefix=`` asks ``folders`` for the subtree
and ``prefix`` for the folder itself: vectors written before ``folders`` existed (until
a backfill re-run upgrades them) are still found in their own folder, just not from an
ancestor. A folder is written ``trips``, ``trips/``, ``/trips/`` or
``s3://bucket/trips/`` (:func:`normalise_folder`); ``..``, ``.`` and empty segments
(``a//b``) are refused rather than guessed at. ``prefix=`` alone (the root's subtree)
is every image, so it is refused as a no-op; ``folder=`` alone is the images at the
bucket root. ``prefix!=`` is refused: "not under" would rest on ``$ne`` over a list and
over a missing key, which the S3 Vectors guide does not define; ``folder!=`` (one
folder) is allowed. ``folders=trips/`` is the same subtree test without the old-vector
arm, and allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from imgsearch.s3uri import S3UriError, is_s3_uri, parse_s3_uri
from imgsearch.search_errors import FilterError
from imgsearch.vectors import FILTERABLE_KEYS, FOLDERS, NON_FILTERABLE_KEYS, NUMERIC_KEYS, PREFIX

FIELD_OPERATORS: tuple[str, ...] = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
)
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or")
_COMPARISONS = {">=": "$gte", "<=": "$lte", "!=": "$ne", "=": "$eq", ">": "$gt", "<": "$lt"}
_WHERE = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$", re.DOTALL)
FOLDER = "folder"
"""The ``--where`` word for one exact folder (stored as ``prefix``; not a metadata key)."""
_WORDS: tuple[str, ...] = (FOLDER,)


def parse_where(text: str, name: str = "--where") -> dict[str, Any]:
    """One ``where`` expression as a filter document; errors name ``name``."""
    match = _WHERE.match(text)
    if match is None:
        raise FilterError(
            f"{name} {text!r}: expected KEY=VALUE, KEY!=VALUE or KEY>=NUMBER "
            f"(also >, <, <=); e.g. {name} prefix=trips/ or {name} width>=1024"
        )
    key, symbol, raw = match.groups()
    what = f"{name} {text!r}"
    if key not in _WORDS:
        _check_key(key, what, words=True)
    op = _COMPARISONS[symbol]
    if key in (PREFIX, FOLDER, FOLDERS):
        return _folder_where(key, op, symbol, raw, what)
    value: str | int | float
    if key in NUMERIC_KEYS:
        value = _number(raw, f"{what}: {key} is a number")
    else:
        if op not in ("$eq", "$ne"):
            raise FilterError(
                f"{what}: {key} holds text; S3 Vectors compares only numbers "
                f"with {symbol} (numeric keys: {', '.join(NUMERIC_KEYS)})"
            )
        value = raw
    return {key: {op: value}}


def _folder_where(key: str, op: str, symbol: str, raw: str, what: str) -> dict[str, Any]:
    """``prefix=`` (subtree), ``folder=`` (exact) and ``folders=`` (subtree, new vectors)."""
    if op not in ("$eq", "$ne"):
        raise FilterError(f"{what}: {key} is a folder; use {key}=FOLDER (not {symbol})")
    folder = normalise_folder(raw, what=what)
    if key == FOLDER:
        return {PREFIX: {op: folder}}
    if op == "$ne":
        raise FilterError(
            f"{what}: S3 Vectors has no reliable 'not under a folder' test; use "
            f"folder!={folder or '/'} to leave out that one folder"
        )
    if not folder:
        raise FilterError(
            f"{what}: everything is under the root, so this filters nothing; leave it out, "
            "or use folder=/ for the images at the bucket root"
        )
    if key == FOLDERS:
        return {FOLDERS: {"$eq": folder}}
    return _subtree(folder)


def parse_filter_json(text: str, what: str = "--filter") -> dict[str, Any]:
    """A filter JSON document, structurally checked (operators and keys); errors name
    ``what`` (the CLI's ``--filter``, the web API's ``filter``)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FilterError(
            f'{what}: not valid JSON ({exc}); e.g. {what} \'{{"prefix": {{"$eq": "trips/"}}}}\''
        ) from exc
    return check_filter(document, what)


def check_filter(document: Any, what: str = "filter") -> dict[str, Any]:
    """A filter document already parsed from JSON (the API's ``filter``), checked."""
    if not isinstance(document, dict) or not document:
        raise FilterError(f'{what}: expected a non-empty JSON object, e.g. {{"format": "png"}}')
    _check_document(document, what)
    return document


def combine(wheres: Sequence[str] = (), filter_json: str | None = None) -> dict[str, Any] | None:
    """All filter options (``--where``, ``--filter``) ANDed into one document, or None."""
    parts = [parse_where(w) for w in wheres]
    if filter_json:
        parts.append(parse_filter_json(filter_json))
    return all_of(parts)


def all_of(parts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Filter documents ANDed: None for none, the one itself, else ``$and``."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and": list(parts)}


def normalise_folder(text: str, bucket: str | None = None, *, what: str = "folder") -> str:
    """A folder as the index stores it: ``trips`` / ``/trips/`` / ``s3://b/trips`` -> ``trips/``.

    The root is ``""``. With ``bucket``, an ``s3://`` form must name that bucket (the
    index holds one bucket's images, a folder of another would silently match nothing).
    """
    path = text.strip()
    if is_s3_uri(path):
        try:
            uri = parse_s3_uri(path, what)
        except S3UriError as exc:
            raise FilterError(str(exc)) from None
        if bucket is not None and uri.bucket != bucket:
            raise FilterError(
                f"{what}: {text.strip()!r} is in bucket {uri.bucket!r}, but the index holds "
                f"images of bucket {bucket!r}; give a folder of {bucket!r}"
            )
        path = uri.key
    elif path.startswith("/"):
        path = path[1:]
    if not path:
        return ""
    if not path.endswith("/"):
        path += "/"
    for segment in path[:-1].split("/"):
        if segment in ("", ".", ".."):
            shown = "an empty folder name" if not segment else repr(segment)
            raise FilterError(
                f"{what}: {text.strip()!r} has {shown} in it; S3 folders are written "
                "like trips/2024/ (no '..', '.' or '//')"
            )
    return path


def subtree_filter(folder: str) -> dict[str, Any] | None:
    """Everything under ``folder`` (subfolders too, like an S3 prefix); None for the root.

    The ``prefix`` arm keeps vectors written before ``folders`` existed found in their
    own folder.
    """
    path = normalise_folder(folder)
    return _subtree(path) if path else None


def _subtree(path: str) -> dict[str, Any]:
    return {"$or": [{FOLDERS: {"$eq": path}}, {PREFIX: {"$eq": path}}]}


def folder_filter(folder: str) -> dict[str, Any] | None:
    """Only the images directly in ``folder``; None when no folder is given (blank text).

    ``"/"`` is the bucket root: the images at the top level.
    """
    if not folder.strip():
        return None
    return {PREFIX: {"$eq": normalise_folder(folder)}}


def prefix_filter(prefix: str) -> dict[str, Any] | None:
    """The web page's folder box: everything under it ("" -> no filter); see subtree_filter."""
    return subtree_filter(prefix)


# --------------------------------------------------------------------------- checks


def _check_key(key: str, where: str, *, words: bool = False) -> None:
    if key in NON_FILTERABLE_KEYS:
        raise FilterError(
            f"{where}: {key!r} is stored non-filterable in the index, so S3 Vectors cannot "
            "filter on it; use source_key, prefix= or folder="
        )
    if key not in FILTERABLE_KEYS:
        also = f" (and {FOLDER}= for one exact folder)" if words else ""
        raise FilterError(
            f"{where}: unknown metadata key {key!r}; filterable keys: "
            f"{', '.join(FILTERABLE_KEYS)}{also}"
        )


def _number(raw: str, what: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        raise FilterError(f"{what}, got {raw!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FilterError(f"{what}, got {raw!r}")
    return number


def _check_document(document: dict[str, Any], where: str) -> None:
    for key, value in document.items():
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, list) or not value:
                raise FilterError(f"{where}: {key} takes a non-empty list of filters")
            for i, item in enumerate(value):
                if not isinstance(item, dict) or not item:
                    raise FilterError(f"{where}: {key}[{i}] must be a non-empty JSON object")
                _check_document(item, f"{where} {key}[{i}]")
        elif key.startswith("$"):
            raise FilterError(
                f"{where}: unknown operator {key!r} at the top level; use a metadata key, "
                f"{' or '.join(LOGICAL_OPERATORS)}"
            )
        else:
            _check_key(key, where)
            if isinstance(value, dict):
                if not value:
                    raise FilterError(f"{where}: {key}: empty operator object")
                for op in value:
                    if op not in FIELD_OPERATORS:
                        raise FilterError(
                            f"{where}: {key}: unknown operator {op!r}; allowed: "
                            f"{', '.join(FIELD_OPERATORS)}"
                        )
            elif isinstance(value, list) or value is None:
                raise FilterError(
                    f"{where}: {key}: use a value or an operator object, e.g. "
                    f'{{"{key}": {{"$in": [...]}}}}'
                )


__all__ = [
    "FIELD_OPERATORS",
    "FOLDER",
    "LOGICAL_OPERATORS",
    "all_of",
    "check_filter",
    "combine",
    "folder_filter",
    "normalise_folder",
    "parse_filter_json",
    "parse_where",
    "prefix_filter",
    "subtree_filter",
]
