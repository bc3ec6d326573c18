"""``--where`` / ``--filter`` parsing into S3 Vectors filter documents."""

from __future__ import annotations

import json

import pytest

from imgsearch.images import ImageInfo
from imgsearch.search_errors import FilterError
from imgsearch.search_filters import (
    combine,
    folder_filter,
    normalise_folder,
    parse_filter_json,
    parse_where,
    prefix_filter,
    subtree_filter,
)
from imgsearch.vectors import FILTERABLE_KEYS, NON_FILTERABLE_KEYS, NUMERIC_KEYS, build_metadata

UNDER_05 = {"$or": [{"folders": {"$eq": "05/"}}, {"prefix": {"$eq": "05/"}}]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prefix=05/", UNDER_05),
        ("prefix=05", UNDER_05),
        ("prefix=/05/", UNDER_05),
        ("prefix=s3://any-bucket/05", UNDER_05),
        ("folder=05/", {"prefix": {"$eq": "05/"}}),
        ("folder=05", {"prefix": {"$eq": "05/"}}),
        ("folder=", {"prefix": {"$eq": ""}}),
        ("folder=/", {"prefix": {"$eq": ""}}),
        ("folder!=05", {"prefix": {"$ne": "05/"}}),
        ("folders=05", {"folders": {"$eq": "05/"}}),
        ("modified_epoch>=1714521600", {"modified_epoch": {"$gte": 1714521600}}),
        ("ingested_epoch<1714521600", {"ingested_epoch": {"$lt": 1714521600}}),
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
        ("prefix=", "filters nothing"),
        ("prefix=/", "filters nothing"),
        ("folders=", "filters nothing"),
        ("prefix!=05/", "folder!=05/"),
        ("prefix>=05/", "is a folder"),
        ("folder=a/../b", "'..'"),
        ("prefix=a//b", "empty folder name"),
        ("prefix=./a", "'.'"),
        ("prefix=s3://", "needs a bucket"),
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
        key="a/k.jpg",
        image=ImageInfo("jpeg", 3, 4),
        size=5,
        etag="e",
        model_id="m",
        ingested_at="t",
        ingested_epoch=2,
        modified_epoch=1,
    )
    numbers = {k for k, v in metadata.items() if isinstance(v, int) and not isinstance(v, bool)}
    assert numbers == set(NUMERIC_KEYS)
    assert set(NUMERIC_KEYS) <= set(FILTERABLE_KEYS)
    assert set(metadata) - set(NON_FILTERABLE_KEYS) == set(FILTERABLE_KEYS)


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
    assert prefix_filter("a/b") == subtree_filter("a/b/")


@pytest.mark.parametrize(
    ("text", "folder"),
    [
        ("trips", "trips/"),
        ("trips/", "trips/"),
        ("/trips/", "trips/"),
        ("  trips/2024  ", "trips/2024/"),
        ("s3://photos/trips/2024/", "trips/2024/"),
        ("s3://photos/trips", "trips/"),
        ("s3://photos/", ""),
        ("s3://photos", ""),
        ("", ""),
        ("/", ""),
    ],
)
def test_normalise_folder_accepts_the_usual_spellings(text: str, folder: str) -> None:
    assert normalise_folder(text, "photos") == folder
    assert normalise_folder(text) == folder


def test_normalise_folder_refuses_another_bucket_and_odd_paths() -> None:
    with pytest.raises(FilterError) as err:
        normalise_folder("s3://other/trips/", "photos")
    assert "'other'" in str(err.value) and "'photos'" in str(err.value)
    for bad in ("a//b", "../a", "a/./b", "//a"):
        with pytest.raises(FilterError) as err:
            normalise_folder(bad)
        assert repr(bad) in str(err.value), bad


def test_subtree_and_folder_filters() -> None:
    assert subtree_filter("") is None
    assert subtree_filter("/") is None
    assert subtree_filter("trips") == {
        "$or": [{"folders": {"$eq": "trips/"}}, {"prefix": {"$eq": "trips/"}}]
    }
    assert folder_filter("  ") is None
    assert folder_filter("/") == {"prefix": {"$eq": ""}}
    assert folder_filter("s3://b/trips/2024") == {"prefix": {"$eq": "trips/2024/"}}
    for text in ("a//b", "s3://"):
        with pytest.raises(FilterError):
            subtree_filter(text)
        with pytest.raises(FilterError):
            folder_filter(text)
