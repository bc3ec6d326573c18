"""The local cloud's S3 Vectors data plane: validation, filters, exact top-k distances."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from imgsearch.limits import LIMITS
from localcloud.services.errors import ServiceError
from localcloud.services.metadata_filter import compile_filter
from localcloud.services.vectorstore import IndexData


def _index(metric: str = "cosine", dim: int = 4, nf: tuple[str, ...] = ()) -> IndexData:
    return IndexData(dim, metric, frozenset(nf))


def _put(index: IndexData, key: str, vec: list[float], **metadata: Any) -> None:
    index.put({"vectors": [{"key": key, "data": {"float32": vec}, "metadata": metadata}]})


def _query(index: IndexData, vec: list[float], top_k: int = 10, **extra: Any) -> dict[str, Any]:
    return index.query(
        {"queryVector": {"float32": vec}, "topK": top_k, "returnDistance": True, **extra}
    )


def _validation(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ServiceError) as err:
        call(*args, **kwargs)
    assert err.value.code == "ValidationException"
    assert err.value.status == 400
    return err.value.message


# --------------------------------------------------------------------------- distances


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_query_is_exact_top_k_with_the_index_metric(metric: str) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    index = _index(metric, 16)
    for start in range(0, 300, 100):
        index.put(
            {
                "vectors": [
                    {"key": f"v{i}", "data": {"float32": vectors[i].tolist()}}
                    for i in range(start, start + 100)
                ]
            }
        )
    query = rng.standard_normal(16).astype(np.float32)
    got = _query(index, query.tolist(), top_k=7)

    v, q = vectors.astype(np.float64), query.astype(np.float64)
    if metric == "cosine":
        expected = 1 - (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
    else:
        expected = np.linalg.norm(v - q, axis=1)
    order = np.argsort(expected)[:7]
    assert got["distanceMetric"] == metric
    assert [r["key"] for r in got["vectors"]] == [f"v{i}" for i in order]
    for r, i in zip(got["vectors"], order, strict=True):
        assert r["distance"] == pytest.approx(expected[i], abs=1e-5)


def test_distance_and_metadata_only_when_asked() -> None:
    index = _index()
    _put(index, "a", [1, 0, 0, 0], colour="red")
    bare = index.query({"queryVector": {"float32": [1, 0, 0, 0]}, "topK": 1})
    assert bare["vectors"] == [{"key": "a"}]
    full = _query(index, [1, 0, 0, 0], returnMetadata=True)
    assert full["vectors"][0]["metadata"] == {"colour": "red"}
    assert full["vectors"][0]["distance"] == pytest.approx(0.0, abs=1e-6)


def test_overwrite_and_delete_reuse_rows_without_ghosts() -> None:
    index = _index()
    _put(index, "a", [1, 0, 0, 0])
    _put(index, "b", [0, 1, 0, 0])
    _put(index, "a", [0, 0, 1, 0])  # overwrite: one vector, new data
    assert len(index) == 2
    assert _query(index, [0, 0, 1, 0], top_k=1)["vectors"][0]["key"] == "a"
    index.delete({"keys": ["a", "never-there"]})
    assert [r["key"] for r in _query(index, [0, 0, 1, 0])["vectors"]] == ["b"]
    _put(index, "c", [0, 0, 0, 1])
    assert sorted(r["key"] for r in _query(index, [0, 0, 0, 1])["vectors"]) == ["b", "c"]


def test_get_returns_existing_keys_only() -> None:
    index = _index()
    _put(index, "a", [1, 2, 3, 4], n=1)
    got = index.get({"keys": ["a", "zz"], "returnData": True, "returnMetadata": True})
    assert got == {
        "vectors": [{"key": "a", "data": {"float32": [1, 2, 3, 4]}, "metadata": {"n": 1}}]
    }


def test_list_pages_through_every_vector_once() -> None:
    index = _index()
    for i in range(25):
        _put(index, f"k{i:02d}", [1, i, 0, 0])
    seen: list[str] = []
    token = None
    while True:
        page = index.list({"maxResults": 10, **({"nextToken": token} if token else {})})
        seen += [v["key"] for v in page["vectors"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(seen) == [f"k{i:02d}" for i in range(25)]
    segments = [
        {v["key"] for v in index.list({"segmentCount": 3, "segmentIndex": s})["vectors"]}
        for s in range(3)
    ]
    assert set().union(*segments) == set(seen)
    assert sum(len(s) for s in segments) == 25


# --------------------------------------------------------------------------- validation


def test_put_rejects_what_the_service_rejects() -> None:
    index = _index()
    assert "length 4" in _validation(_put, index, "a", [1, 2, 3])
    assert "NaN" in _validation(_put, index, "a", [1, math.nan, 0, 0])
    assert "NaN or infinite" in _validation(_put, index, "a", [1, math.inf, 0, 0])
    assert "zero vector" in _validation(_put, index, "a", [0, 0, 0, 0])
    too_many = {
        "vectors": [{"key": f"k{i}", "data": {"float32": [1, 0, 0, 0]}} for i in range(501)]
    }
    assert "limit of 500" in _validation(index.put, too_many)
    assert len(index) == 0  # a rejected request stores nothing
    # euclidean indexes take zero vectors
    _put(_index("euclidean"), "z", [0, 0, 0, 0])


def test_put_enforces_metadata_limits() -> None:
    index = _index(nf=("big",))
    message = _validation(_put, index, "a", [1, 0, 0, 0], note="x" * 2100)
    assert "filterable metadata" in message and "2048" in message
    # the same text in a non-filterable key is fine, up to the total limit
    _put(index, "a", [1, 0, 0, 0], big="x" * 30_000)
    assert "40960" in _validation(_put, index, "b", [1, 0, 0, 0], big="x" * 41_000)
    keys = {f"k{i}": i for i in range(LIMITS.metadata_max_keys + 1)}
    assert "keys" in _validation(_put, index, "c", [1, 0, 0, 0], **keys)
    assert "string, number, boolean" in _validation(_put, index, "d", [1, 0, 0, 0], obj={"a": 1})


def test_query_validation() -> None:
    index = _index()
    _put(index, "a", [1, 0, 0, 0])
    over = LIMITS.query_top_k_max + 1
    assert f"limit of {LIMITS.query_top_k_max}" in _validation(_query, index, [1, 0, 0, 0], over)
    assert "length 4" in _validation(_query, index, [1, 0, 0])
    assert "zero vector" in _validation(_query, index, [0, 0, 0, 0])
    assert "NaN" in _validation(_query, index, [math.nan, 0, 0, 0])
    assert "Invalid filter" in _validation(
        lambda: _query(index, [1, 0, 0, 0], filter={"a": {"$regex": "x"}})
    )


def test_query_filter_applies_before_top_k() -> None:
    index = _index()
    for i in range(20):
        _put(index, f"k{i}", [1, i / 10, 0, 0], n=i, even=i % 2 == 0)
    got = _query(index, [1, 0, 0, 0], top_k=3, filter={"even": False, "n": {"$gte": 10}})
    assert [r["key"] for r in got["vectors"]] == ["k11", "k13", "k15"]
    assert _query(index, [1, 0, 0, 0], filter={"n": {"$gt": 100}})["vectors"] == []


def test_filter_on_a_non_filterable_key_is_refused() -> None:
    index = _index(nf=("s3_uri",))
    _put(index, "a", [1, 0, 0, 0], s3_uri="s3://b/k")
    message = _validation(lambda: _query(index, [1, 0, 0, 0], filter={"s3_uri": "s3://b/k"}))
    assert "non-filterable" in message


# --------------------------------------------------------------------------- filters

META = {"genre": ["documentary", "romance"], "year": 2021, "title": "x", "flag": True}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"genre": "documentary"}, True),  # implicit $eq; any element of a list matches
        ({"genre": {"$eq": "comedy"}}, False),
        ({"genre": {"$ne": "comedy"}}, True),
        ({"genre": {"$ne": "romance"}}, False),
        ({"year": {"$gt": 2020}}, True),
        ({"year": {"$gte": 2021, "$lt": 2022}}, True),
        ({"year": {"$lte": 2020}}, False),
        ({"genre": {"$in": ["comedy", "romance"]}}, True),
        ({"genre": {"$nin": ["comedy", "romance"]}}, False),
        ({"year": {"$in": [2020, 2021]}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"title": {"$exists": True}}, True),
        ({"missing": "x"}, False),
        ({"missing": {"$ne": "x"}}, True),
        ({"missing": {"$nin": ["x"]}}, True),
        ({"missing": {"$gt": 1}}, False),
        ({"flag": True}, True),
        ({"flag": 1}, False),  # booleans are not numbers
        ({"year": True}, False),
        ({"$and": [{"year": 2021}, {"title": "x"}]}, True),
        ({"$and": [{"year": 2021}, {"title": "y"}]}, False),
        ({"$or": [{"year": 1999}, {"title": "x"}]}, True),
        ({"$or": [{"year": 1999}, {"title": "y"}]}, False),
        ({"year": 2021, "title": "y"}, False),  # several keys are ANDed
        ({"$or": [{"$and": [{"year": {"$gt": 2000}}, {"genre": "romance"}]}]}, True),
    ],
)
def test_filter_semantics(document: dict[str, Any], expected: bool) -> None:
    assert compile_filter(document)(META) is expected


@pytest.mark.parametrize(
    "document",
    [
        [],
        {},
        {"$and": []},
        {"$or": {"a": 1}},
        {"$not": {"a": 1}},
        {"a": {"$gt": "x"}},
        {"a": {"$in": []}},
        {"a": {"$in": [{"b": 1}]}},
        {"a": {"$exists": "yes"}},
        {"a": {"$eq": [1, 2]}},
        {"a": {}},
        {"a": [1, 2]},
    ],
)
def test_malformed_filters_are_rejected(document: Any) -> None:
    with pytest.raises(ServiceError) as err:
        compile_filter(document)
    assert err.value.code == "ValidationException"
    assert err.value.message.startswith("Invalid filter")


# --------------------------------------------------------------------------- paging


def test_query_above_the_page_size_answers_in_pages_with_a_next_token() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((250, 4)).astype(np.float32)
    index = _index()
    for start in range(0, 250, 50):
        index.put(
            {
                "vectors": [
                    {"key": f"v{i}", "data": {"float32": vectors[i].tolist()}, "metadata": {"n": i}}
                    for i in range(start, start + 50)
                ]
            }
        )
    request = {"queryVector": {"float32": [1.0, 0.5, 0.0, 0.0]}, "topK": 230}
    first = index.query({**request, "returnDistance": True})
    assert len(first["vectors"]) == LIMITS.query_page_max_results and first["nextToken"]
    second = index.query({**request, "returnDistance": True, "nextToken": first["nextToken"]})
    third = index.query({**request, "returnMetadata": True, "nextToken": second["nextToken"]})
    assert "nextToken" not in third
    keys = [v["key"] for page in (first, second, third) for v in page["vectors"]]
    assert len(keys) == len(set(keys)) == 230
    distances = [v["distance"] for page in (first, second) for v in page["vectors"]]
    assert distances == sorted(distances)
    v, q = vectors.astype(np.float64), np.array([1.0, 0.5, 0.0, 0.0])
    expected = 1 - (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
    assert keys == [f"v{i}" for i in np.argsort(expected, kind="stable")[:230]]
    assert third["vectors"][0]["metadata"] == {"n": int(third["vectors"][0]["key"][1:])}
    # A token is good for one page, and only with the query that made it.
    assert "invalid or has expired" in _validation(
        index.query, {**request, "nextToken": first["nextToken"]}
    )
    fresh = index.query(request)
    assert "must repeat" in _validation(
        index.query, {**request, "topK": 229, "nextToken": fresh["nextToken"]}
    )
    assert "invalid or has expired" in _validation(index.query, {**request, "nextToken": "nope"})


def test_query_within_one_page_has_no_token() -> None:
    index = _index()
    _put(index, "a", [1, 0, 0, 0])
    assert "nextToken" not in _query(index, [1, 0, 0, 0], top_k=LIMITS.query_page_max_results)
