"""The search API's query string: k, folder, format, sizes, days, max_distance, group."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from imgsearch.limits import LIMITS
from imgsearch.search_errors import SearchInputError
from scripts.web.params import search_params

UNDER_TRIPS = {"$or": [{"folders": {"$eq": "trips/"}}, {"prefix": {"$eq": "trips/"}}]}


def params(**query: Any) -> Any:
    return search_params(QueryParams({k: str(v) for k, v in query.items()}), "photos-bucket")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_defaults_are_five_results_no_filter_no_grouping() -> None:
    p = params()
    assert (p.k, p.filter, p.max_distance, p.group) == (5, None, None, False)


@pytest.mark.parametrize("folder", ["trips", "/trips/", "trips/", "s3://photos-bucket/trips"])
def test_prefix_is_the_subtree_and_folder_the_exact_folder_as_in_the_cli(folder: str) -> None:
    assert params(prefix=folder).filter == UNDER_TRIPS
    assert params(folder=folder).filter == {"prefix": {"$eq": "trips/"}}
    assert params(prefix="").filter is None and params(prefix="/").filter is None
    assert params(folder="").filter is None
    assert params(folder="/").filter == {"prefix": {"$eq": ""}}  # the bucket root only


def test_every_filter_is_anded_in_one_document() -> None:
    p = params(
        prefix="trips", format="PNG", min_bytes=10, max_bytes=2000, since="2024-05-01",
        until="2024-05-31", filter='{"width": {"$gte": 100}}', max_distance="0.5", group=1, k=7,
    )  # fmt: skip
    assert p.k == 7 and p.max_distance == 0.5 and p.group is True
    assert p.filter == {
        "$and": [
            UNDER_TRIPS,
            {"format": {"$eq": "png"}},
            {"size": {"$gte": 10, "$lte": 2000}},
            # whole UTC days, inclusive: until the last second of May 31
            {"modified_epoch": {"$gte": epoch("2024-05-01"), "$lte": epoch("2024-06-01") - 1}},
            {"width": {"$gte": 100}},
        ]
    }


def test_one_sided_ranges_and_jpg_spelling() -> None:
    assert params(min_bytes=5).filter == {"size": {"$gte": 5}}
    assert params(until="2024-01-01").filter == {
        "modified_epoch": {"$lte": epoch("2024-01-02") - 1}
    }
    assert params(format="jpg").filter == {"format": {"$eq": "jpeg"}}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"k": 0}, "k 0: use 1.."),
        ({"k": LIMITS.query_top_k_max + 1}, f"use 1..{LIMITS.query_top_k_max}"),
        ({"k": "many"}, "k 'many': expected a whole number"),
        ({"format": "tiff"}, "format 'tiff': use one of jpeg, png, gif, webp"),
        ({"min_bytes": "1MB"}, "min_bytes '1MB': give a whole number of bytes"),
        ({"max_bytes": -1}, "max_bytes -1: give 0 or more"),
        ({"min_bytes": 10, "max_bytes": 5}, "size: the upper bound 5 is below the lower bound 10"),
        ({"since": "01/05/2024"}, "since '01/05/2024': give a day as YYYY-MM-DD"),
        ({"since": "2024-05-02", "until": "2024-05-01"}, "until 2024-05-01: is before since"),
        ({"max_distance": "far"}, "max_distance 'far': give a distance of 0 or more"),
        ({"max_distance": "-1"}, "max_distance '-1'"),
        ({"max_distance": "nan"}, "max_distance 'nan'"),
        ({"group": "maybe"}, "group 'maybe': give 1 (on) or 0 (off)"),
        ({"folder": "a/../b"}, "folder: 'a/../b'"),
        ({"folder": "s3://other/trips/"}, "bucket 'other'"),
        ({"prefix": "a/../b"}, "prefix: 'a/../b'"),
        ({"filter": "{oops"}, "filter: not valid JSON"),
    ],
)
def test_bad_params_name_themselves(query: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SearchInputError) as err:
        params(**query)
    assert fragment in str(err.value)
    assert "--" not in str(err.value)  # the page has no CLI flags
