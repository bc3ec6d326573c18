"""The local S3 Vectors store with list-valued metadata, as strict as the service.

``$eq`` on a list matches any element (S3 User Guide, "Metadata filtering"): that is
what makes ``folders`` a subtree filter. The lists count against the 2 KB filterable
budget, and an empty list (which the guide does not document) is refused, so the core
can never come to rely on it.
"""

from __future__ import annotations

from typing import Any

import pytest

from imgsearch.images import ImageInfo
from imgsearch.search_filters import folder_filter, parse_where, subtree_filter
from imgsearch.vectors import NON_FILTERABLE_KEYS, build_metadata
from localcloud.services.errors import ServiceError
from localcloud.services.metadata_filter import compile_filter
from localcloud.services.vectorstore import IndexData


def _index() -> IndexData:
    return IndexData(4, "cosine", frozenset(NON_FILTERABLE_KEYS))


def _put(index: IndexData, key: str, metadata: dict[str, Any]) -> None:
    index.put({"vectors": [{"key": key, "data": {"float32": [1, 0, 0, 0]}, "metadata": metadata}]})


def _keys(index: IndexData, document: dict[str, Any] | None) -> set[str]:
    request: dict[str, Any] = {"queryVector": {"float32": [1, 0, 0, 0]}, "topK": 100}
    if document is not None:
        request["filter"] = document
    return {str(v["key"]) for v in index.query(request)["vectors"]}


def _meta(key: str) -> dict[str, Any]:
    return build_metadata(
        bucket="b",
        key=key,
        image=ImageInfo("png", 1, 1),
        size=1,
        etag="e",
        model_id="m",
        ingested_at="2026-01-01T00:00:00.000Z",
        ingested_epoch=1767225600,
        modified_epoch=1767225000,
    )


def _validation(call: Any, *args: Any) -> str:
    with pytest.raises(ServiceError) as err:
        call(*args)
    assert err.value.code == "ValidationException"
    return err.value.message


def test_eq_on_a_list_matches_any_element() -> None:
    meta = {"folders": ["trips/", "trips/2024/"]}
    assert compile_filter({"folders": {"$eq": "trips/"}})(meta)
    assert compile_filter({"folders": {"$eq": "trips/2024/"}})(meta)
    assert compile_filter({"folders": "trips/2024/"})(meta)  # implicit $eq
    assert not compile_filter({"folders": {"$eq": "trips"}})(meta)  # whole values only
    assert not compile_filter({"folders": {"$eq": "trips/2024/05/"}})(meta)
    assert compile_filter({"folders": {"$in": ["x/", "trips/2024/"]}})(meta)
    assert not compile_filter({"folders": {"$nin": ["x/", "trips/"]}})(meta)
    assert compile_filter({"folders": {"$ne": "x/"}})(meta)
    assert not compile_filter({"folders": {"$ne": "trips/"}})(meta)


def test_subtree_exact_and_epoch_filters_on_the_store() -> None:
    index = _index()
    for key in ("trips/2024/05/a.jpg", "trips/b.jpg", "trips2/c.jpg", "d.jpg"):
        _put(index, key, _meta(key))
    old = {k: v for k, v in _meta("trips/old.jpg").items() if k != "folders"}
    _put(index, "trips/old.jpg", old)  # written before ``folders`` existed
    old_deep = {k: v for k, v in _meta("trips/x/old.jpg").items() if k != "folders"}
    _put(index, "trips/x/old.jpg", old_deep)

    assert _keys(index, subtree_filter("trips")) == {
        "trips/2024/05/a.jpg",
        "trips/b.jpg",
        "trips/old.jpg",  # by the prefix arm
    }  # trips/x/old.jpg is found from trips/x/ only, until the backfill upgrades it
    assert _keys(index, subtree_filter("trips/x")) == {"trips/x/old.jpg"}
    assert _keys(index, subtree_filter("trips/2024/")) == {"trips/2024/05/a.jpg"}
    assert _keys(index, folder_filter("trips")) == {"trips/b.jpg", "trips/old.jpg"}
    assert _keys(index, folder_filter("/")) == {"d.jpg"}
    assert _keys(index, parse_where("modified_epoch>=1767225000")) == _keys(index, None)
    assert _keys(index, parse_where("ingested_epoch<1767225600")) == set()


def test_store_refuses_an_empty_list() -> None:
    message = _validation(_put, _index(), "k", {"folders": []})
    assert "'folders'" in message and "empty list" in message


def test_list_values_count_against_the_filterable_budget() -> None:
    index = _index()
    folders = [f"{'x' * 100}/{i}/" for i in range(20)]  # about 2.1 KB as JSON
    message = _validation(_put, index, "k", {"folders": folders})
    assert "filterable metadata" in message
    _put(index, "k", {"folders": folders[:10]})
