"""S3 Vectors metadata filters: validate a filter document and evaluate it on metadata.

Semantics follow the S3 Vectors user guide ("Metadata filtering"):

* ``{"k": v}`` is shorthand for ``{"k": {"$eq": v}}``; several keys in one object, or
  several operators on one key, are ANDed.
* ``$eq`` / ``$ne`` take a string, number or boolean. Against a list value, ``$eq`` is
  true if any element equals the operand (the guide's example: ``{"category": {"$eq":
  "documentary"}}`` matches ``"category": ["documentary", "romance"]``). The embedder's
  ``folders`` list relies on this for subtree filters.
* ``$gt`` ``$gte`` ``$lt`` ``$lte`` take a number.
* ``$in`` / ``$nin`` take a non-empty array of primitives.
* ``$exists`` takes a boolean. ``$and`` / ``$or`` take a non-empty array of filters.

Where the guide is silent, the choices are: against a list, ``$ne`` is true if no
element equals the operand, ``$in`` if any element is among the choices, ``$nin`` if
none is, and a range operator if any element is a number in range; a missing key never
satisfies ``$eq``, the comparisons or ``$in``, and always satisfies ``$ne`` and ``$nin``
(as in MongoDB, whose syntax S3 Vectors borrows); booleans are never numbers; and a
filter on a key the index declared non-filterable is rejected (a silent empty answer
would hide the mistake). The folder filters imgsearch builds use only ``$eq``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from localcloud.services.errors import ServiceError, validation

Predicate = Callable[[Mapping[str, Any]], bool]

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or")


def _is_primitive(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality without Python's ``True == 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _values(stored: Any) -> list[Any]:
    return list(stored) if isinstance(stored, list) else [stored]


def _bad(message: str) -> ServiceError:
    return validation(f"Invalid filter: {message}")


def compile_filter(document: Any, non_filterable: frozenset[str] = frozenset()) -> Predicate:
    """Validate ``document`` and return a predicate over a vector's metadata."""
    if not isinstance(document, dict):
        raise _bad("the filter must be a JSON object")
    if not document:
        raise _bad("the filter object is empty")
    return _compile_object(document, non_filterable, "filter")


def _compile_object(obj: dict[str, Any], nf: frozenset[str], where: str) -> Predicate:
    parts: list[Predicate] = []
    for key, value in obj.items():
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise _bad(f"{where}.{key} takes a non-empty array of filters")
            subs = []
            for i, item in enumerate(value):
                if not isinstance(item, dict) or not item:
                    raise _bad(f"{where}.{key}[{i}] must be a non-empty filter object")
                subs.append(_compile_object(item, nf, f"{where}.{key}[{i}]"))
            parts.append(_all(subs) if key == "$and" else _any(subs))
        elif key.startswith("$"):
            raise _bad(f"unknown operator {key!r} at {where}; allowed: {', '.join(LOGICAL)}")
        else:
            if key in nf:
                raise _bad(f"metadata key {key!r} is non-filterable in this index")
            parts.append(_compile_field(key, value, f"{where}.{key}"))
    return _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    return lambda md: all(p(md) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    return lambda md: any(p(md) for p in parts)


def _compile_field(key: str, spec: Any, where: str) -> Predicate:
    if not isinstance(spec, dict):
        if not _is_primitive(spec):
            raise _bad(f"{where}: implicit $eq takes a string, number or boolean")
        return _op(key, "$eq", spec, where)
    if not spec:
        raise _bad(f"{where}: empty operator object")
    parts = []
    for op, operand in spec.items():
        if op not in COMPARISONS:
            raise _bad(f"unknown operator {op!r} at {where}; allowed: {', '.join(COMPARISONS)}")
        parts.append(_op(key, op, operand, f"{where}.{op}"))
    return _all(parts)


def _op(key: str, op: str, operand: Any, where: str) -> Predicate:
    missing = object()
    if op in ("$eq", "$ne"):
        if not _is_primitive(operand):
            raise _bad(f"{where} takes a string, number or boolean")

        def eq(md: Mapping[str, Any]) -> bool:
            stored = md.get(key, missing)
            return stored is not missing and any(_same(v, operand) for v in _values(stored))

        return eq if op == "$eq" else (lambda md: not eq(md))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not _is_number(operand):
            raise _bad(f"{where} takes a number")
        compare: Callable[[float, float], bool] = {
            "$gt": lambda a, b: a > b,
            "$gte": lambda a, b: a >= b,
            "$lt": lambda a, b: a < b,
            "$lte": lambda a, b: a <= b,
        }[op]

        def cmp(md: Mapping[str, Any]) -> bool:
            stored = md.get(key, missing)
            if stored is missing:
                return False
            return any(_is_number(v) and compare(v, operand) for v in _values(stored))

        return cmp
    if op in ("$in", "$nin"):
        if not isinstance(operand, list) or not operand:
            raise _bad(f"{where} takes a non-empty array")
        if not all(_is_primitive(v) for v in operand):
            raise _bad(f"{where} takes an array of strings, numbers or booleans")
        choices = list(operand)

        def contained(md: Mapping[str, Any]) -> bool:
            stored = md.get(key, missing)
            if stored is missing:
                return False
            return any(_same(v, c) for v in _values(stored) for c in choices)

        return contained if op == "$in" else (lambda md: not contained(md))
    # $exists
    if not isinstance(operand, bool):
        raise _bad(f"{where} takes a boolean")
    return lambda md: (key in md) == operand


__all__ = ["COMPARISONS", "LOGICAL", "Predicate", "compile_filter"]
