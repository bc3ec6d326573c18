"""``--where`` / ``--filter`` parsing into S3 Vectors filter documents."""

from __future__ import annotations

import json

import pytest

from imgsearch.images import ImageInfo
from imgsearch.vectors import FILTERABLE_KEYS, NUMERIC_KEYS, build_metadata
from scripts.ops.errors import FilterError
from scripts.ops.where import combine, parse_filter_json, parse_where, prefix_filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prefix=05/", {"prefix": {"$eq": "05/"}}),
        ("prefix=05", {"prefix": {"$eq": "05/"}}),
        ("prefix=", {"prefix": {"$eq": ""}}),
        ("format!=gif", {"format": {"$ne": "gif"}}),
        ("width>=1024", {"width": {"$gte": 1024}}),
        ("height > 10", {"height": {"$gt": 10}}),
        ("size<2000000", {"size": {"$lt": 2000000}}),
        ("size<=1.5e6", {"size": {"$lte": 1500000.0}}),
        ("width=512", {"width": {"$eq": 512}}),
        ("source_key=a=b.jpg", {"source_key": {"$eq": "a=b.jpg"}}),
    ],
)
def test_where_forms(text: str, expected: dict[str, object]) -> None:
    assert parse_where(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prefix", "expected KEY=VALUE"),
        ("colour=red", "unknown metadata key 'colour'"),
        ("s3_uri=s3://a/b", "non-filterable"),
        ("width>=wide", "width is a number"),
        ("width=nan", "width is a number"),
        ("format>=png", "compares only numbers"),
    ],
)
def test_where_errors_name_the_input(text: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_where(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_numeric_keys_are_the_numbers_the_embedder_writes() -> None:
    metadata = build_metadata(
        bucket="b",
        key="k.jpg",
        image=ImageInfo("jpeg", 3, 4),
        size=5,
        etag="e",
        model_id="m",
        ingested_at="t",
    )
    numbers = {k for k, v in metadata.items() if isinstance(v, int) and not isinstance(v, bool)}
    assert numbers == set(NUMERIC_KEYS)
    assert set(NUMERIC_KEYS) <= set(FILTERABLE_KEYS)


def test_filter_json_accepted_and_checked() -> None:
    doc = {"$or": [{"format": "png"}, {"width": {"$gte": 100}}]}
    assert parse_filter_json(json.dumps(doc)) == doc
    for bad, message in [
        ("{bad", "not valid JSON"),
        ("[]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        ('{"$not": {"a": 1}}', "unknown operator '$not'"),
        ('{"format": {"$like": "p%"}}', "unknown operator '$like'"),
        ('{"nope": 1}', "unknown metadata key 'nope'"),
        ('{"$and": []}', "non-empty list"),
        ('{"format": ["png"]}', "operator object"),
    ]:
        with pytest.raises(FilterError) as err:
            parse_filter_json(bad)
        assert message in str(err.value), bad


def test_combine_ands_everything() -> None:
    assert combine() is None
    assert combine(["format=png"]) == {"format": {"$eq": "png"}}
    assert combine(["format=png"], '{"width": {"$gt": 1}}') == {
        "$and": [{"format": {"$eq": "png"}}, {"width": {"$gt": 1}}]
    }
    assert prefix_filter("  ") is None
    assert prefix_filter("a/b") == {"prefix": {"$eq": "a/b/"}}
