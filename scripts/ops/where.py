"""Search filters: ``--where prefix=05/`` forms and ``--filter`` JSON -> an S3 Vectors filter.

S3 Vectors filters are JSON documents (``{"prefix": {"$eq": "05/"}}``, ``$and``/``$or``,
``$gt``/``$gte``/``$lt``/``$lte`` on numbers, ``$in``/``$nin``, ``$exists``). Typing
them on a command line is error-prone, so ``--where`` takes the common cases::

    --where prefix=05/          {"prefix": {"$eq": "05/"}}
    --where format!=gif         {"format": {"$ne": "gif"}}
    --where width>=1024         {"width": {"$gte": 1024}}
    --where size<2000000        {"size": {"$lt": 2000000}}

Several ``--where`` (and a ``--filter``) are ANDed. Keys are checked against the
metadata the embedder writes (``imgsearch.vectors``): a typo would otherwise match
nothing and look like "no results". Note that ``prefix`` is the image's *folder*
(``05/`` matches ``05/a.jpg`` but not ``05/b/c.jpg``): S3 Vectors matches whole values,
it has no starts-with operator. A ``prefix`` value without its trailing ``/`` is given
one, since the stored folders always end in ``/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from imgsearch.vectors import FILTERABLE_KEYS, NON_FILTERABLE_KEYS, NUMERIC_KEYS
from scripts.ops.errors import FilterError

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
_EXAMPLE = "e.g. --where prefix=05/ or --where width>=1024"


def parse_where(text: str) -> dict[str, Any]:
    """One ``--where`` expression as a filter document."""
    match = _WHERE.match(text)
    if match is None:
        raise FilterError(
            f"--where {text!r}: expected KEY=VALUE, KEY!=VALUE or KEY>=NUMBER "
            f"(also >, <, <=); {_EXAMPLE}"
        )
    key, symbol, raw = match.groups()
    _check_key(key, f"--where {text!r}")
    op = _COMPARISONS[symbol]
    value: str | int | float
    if key in NUMERIC_KEYS:
        value = _number(raw, f"--where {text!r}: {key} is a number")
    else:
        if op not in ("$eq", "$ne"):
            raise FilterError(
                f"--where {text!r}: {key} holds text; S3 Vectors compares only numbers "
                f"with {symbol} (numeric keys: {', '.join(NUMERIC_KEYS)})"
            )
        value = raw
        if key == "prefix" and value and not value.endswith("/"):
            value += "/"
    return {key: {op: value}}


def parse_filter_json(text: str, what: str = "--filter") -> dict[str, Any]:
    """A filter JSON document, structurally checked (operators and keys); errors name
    ``what`` (the CLI's ``--filter``, the web API's ``filter``)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FilterError(
            f'{what}: not valid JSON ({exc}); e.g. {what} \'{{"prefix": {{"$eq": "05/"}}}}\''
        ) from exc
    if not isinstance(document, dict) or not document:
        raise FilterError(f'{what}: expected a non-empty JSON object, e.g. {{"format": "png"}}')
    _check_document(document, what)
    return document


def combine(wheres: Sequence[str] = (), filter_json: str | None = None) -> dict[str, Any] | None:
    """All filter options ANDed into one document, or None when there are none."""
    parts = [parse_where(w) for w in wheres]
    if filter_json:
        parts.append(parse_filter_json(filter_json))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}


def prefix_filter(prefix: str) -> dict[str, Any] | None:
    """The filter for the web page's folder box ("" -> no filter)."""
    prefix = prefix.strip()
    if not prefix:
        return None
    return parse_where(f"prefix={prefix}")


# --------------------------------------------------------------------------- checks


def _check_key(key: str, where: str) -> None:
    if key in NON_FILTERABLE_KEYS:
        raise FilterError(
            f"{where}: {key!r} is stored non-filterable in the index, so S3 Vectors cannot "
            "filter on it; use source_key or prefix"
        )
    if key not in FILTERABLE_KEYS:
        raise FilterError(
            f"{where}: unknown metadata key {key!r}; filterable keys: {', '.join(FILTERABLE_KEYS)}"
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
    "LOGICAL_OPERATORS",
    "combine",
    "parse_filter_json",
    "parse_where",
    "prefix_filter",
]
