"""Metadata building, S3 Vectors limits, PutVectors splitting and the index edge."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from imgsearch.images import ImageInfo
from imgsearch.limits import LIMITS
from imgsearch.vectors import (
    FILTERABLE_KEYS,
    NON_FILTERABLE_KEYS,
    VectorIndex,
    VectorRecord,
    VectorRejected,
    build_metadata,
    dropped_keys,
    json_bytes,
    key_prefix,
    put_batches,
    stored_etag,
    validate_metadata,
    validate_vector,
)

IMAGE = ImageInfo("jpeg", 640, 480)


def _meta(key: str, bucket: str = "photos") -> dict[str, Any]:
    return build_metadata(
        bucket=bucket,
        key=key,
        image=IMAGE,
        size=12345,
        etag="0123456789abcdef0123456789abcdef",
        model_id="amazon.nova-2-multimodal-embeddings-v1:0",
        ingested_at="2025-11-13T12:00:00.000Z",
        ingested_epoch=1763035200,
        modified_epoch=1763000000,
    )


def test_metadata_for_an_ordinary_key() -> None:
    meta = _meta("holiday/2024/beach photo.jpg")
    assert meta == {
        "source_bucket": "photos",
        "source_key": "holiday/2024/beach photo.jpg",
        "prefix": "holiday/2024/",
        "folders": ["holiday/", "holiday/2024/"],
        "format": "jpeg",
        "width": 640,
        "height": 480,
        "size": 12345,
        "etag": "0123456789abcdef0123456789abcdef",
        "ingested_at": "2025-11-13T12:00:00.000Z",
        "ingested_epoch": 1763035200,
        "modified_epoch": 1763000000,
        "model_id": "amazon.nova-2-multimodal-embeddings-v1:0",
        "s3_uri": "s3://photos/holiday/2024/beach photo.jpg",
    }
    assert set(meta) == {*FILTERABLE_KEYS, "s3_uri"}


def test_prefix_is_the_folder() -> None:
    assert key_prefix("a.jpg") == ""
    assert key_prefix("a/b/c.jpg") == "a/b/"
    assert key_prefix("a//c.jpg") == "a//"


def test_long_key_moves_to_non_filterable_and_stays_whole() -> None:
    key = "deep/" * 200 + "x.jpg"  # 1005 bytes: key and prefix together exceed 2 KB
    meta = _meta(key)
    assert "source_key" not in meta and "folders" not in meta
    assert meta["source_key_full"] == key
    assert meta["s3_uri"] == f"s3://photos/{key}"
    assert meta["prefix"] == "deep/" * 200
    assert dropped_keys(meta, key) == ["folders", "source_key"]
    filterable = {k: v for k, v in meta.items() if k not in NON_FILTERABLE_KEYS}
    assert json_bytes(filterable) <= LIMITS.filterable_metadata_max_bytes


def test_long_unicode_key_is_measured_in_utf8_bytes() -> None:
    key = "写真/" * 140 + "猫.jpg"  # 427 characters, 987 bytes in UTF-8
    meta = _meta(key)
    assert "source_key" not in meta
    assert meta["prefix"] == "写真/" * 140
    assert meta["source_key_full"] == key


def test_key_that_escapes_badly_drops_prefix_too_and_never_fails() -> None:
    key = ("\x01" * 300 + "/") * 3 + "x.jpg"  # control characters: 6 JSON bytes each
    meta = _meta(key)
    assert "source_key" not in meta and "prefix" not in meta
    assert meta["source_key_full"] == key
    assert dropped_keys(meta, key) == ["folders", "source_key", "prefix"]
    filterable = {k: v for k, v in meta.items() if k not in NON_FILTERABLE_KEYS}
    assert json_bytes(filterable) <= LIMITS.filterable_metadata_max_bytes
    validate_metadata(meta)


def test_key_just_within_budget_keeps_source_key() -> None:
    key = "k" * 300 + ".jpg"
    meta = _meta(key)
    assert meta["source_key"] == key
    assert "source_key_full" not in meta
    assert dropped_keys(meta, key) == []


def test_metadata_limits_are_enforced() -> None:
    with pytest.raises(VectorRejected) as err:
        validate_metadata({f"k{i}": i for i in range(51)})
    assert err.value.reason == "too_many_metadata_keys"
    with pytest.raises(VectorRejected) as err:
        validate_metadata({"note": "x" * 2100})
    assert err.value.reason == "metadata_too_large"
    with pytest.raises(VectorRejected) as err:
        validate_metadata({"s3_uri": "x" * 41_000})
    assert err.value.reason == "metadata_too_large"
    validate_metadata({"s3_uri": "x" * 30_000, "source_key_full": "y" * 5_000})


def test_stored_etag() -> None:
    assert stored_etag(None) is None
    assert stored_etag({"key": "k", "metadata": {}}) is None
    assert stored_etag({"key": "k", "metadata": {"etag": "abc"}}) == "abc"


# --------------------------------------------------------------------------- vectors


def test_validate_vector_rules() -> None:
    validate_vector([0.1, 0.2], dimension=2)
    with pytest.raises(VectorRejected) as err:
        validate_vector([0.0, 0.0, 0.0], dimension=3, distance_metric="cosine")
    assert err.value.reason == "zero_vector"
    validate_vector([0.0, 0.0, 0.0], dimension=3, distance_metric="euclidean")
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(VectorRejected) as err:
            validate_vector([0.1, bad, 0.3])
        assert err.value.reason == "non_finite_vector"
        assert "element 1" in err.value.detail
    with pytest.raises(VectorRejected) as err:  # a sum would raise ValueError here
        validate_vector([math.inf, -math.inf, 0.3])
    assert (err.value.reason, err.value.detail) == ("non_finite_vector", "vector element 0 is inf")
    validate_vector([1e308, 1e308, 0.3])  # finite; a sum would overflow
    with pytest.raises(VectorRejected) as err:
        validate_vector([0.1] * 5, dimension=4)
    assert err.value.reason == "wrong_dimension"


def _records(n: int, dim: int, seed: int = 7) -> list[VectorRecord]:
    rng = random.Random(seed)
    return [
        VectorRecord(f"{i:064x}", [rng.uniform(-1, 1) for _ in range(dim)], _meta(f"p/{i}.jpg"))
        for i in range(n)
    ]


def test_put_batches_split_by_count() -> None:
    batches = list(put_batches(_records(1203, 4)))
    assert [len(b) for b in batches] == [500, 500, 203]
    assert batches[0][0]["data"] == {"float32": _records(1, 4)[0].data}


def test_put_batches_split_by_measured_size_at_3072_dimensions() -> None:
    records = _records(500, 3072)
    batches = list(put_batches(records))
    assert len(batches) >= 2  # 500 x 3072 floats as JSON is well over 20 MiB
    assert sum(len(b) for b in batches) == 500
    for batch in batches:
        # botocore's own serialisation of the request body
        body = json.dumps({"vectorBucketName": "b", "indexName": "i", "vectors": batch})
        assert len(body.encode()) <= LIMITS.put_vectors_max_request_bytes
    assert [e["key"] for b in batches for e in b] == [r.key for r in records]


def test_put_batches_small_batch_is_one_request() -> None:
    assert [len(b) for b in put_batches(_records(10, 3072))] == [10]


# --------------------------------------------------------------------------- the edge


@pytest.fixture
def s3vectors() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3vectors", region_name="us-east-1")
        client.create_vector_bucket(vectorBucketName="vectors-test")
        client.create_index(
            vectorBucketName="vectors-test",
            indexName="images",
            dataType="float32",
            dimension=4,
            distanceMetric="cosine",
        )
        yield client


def test_index_put_get_delete(s3vectors: Any) -> None:
    index = VectorIndex(s3vectors, "vectors-test", "images", dimension=4)
    records = _records(230, 4)
    calls: list[str] = []
    s3vectors.meta.events.register(
        "before-call.s3vectors.*", lambda model, **_: calls.append(model.name)
    )
    index.put(records)
    assert calls == ["PutVectors"]
    got = index.get([r.key for r in records])
    assert calls.count("GetVectors") == 3  # 100 keys per call
    assert set(got) == {r.key for r in records}
    first = got[records[0].key]
    assert first["metadata"]["source_key"] == "p/0.jpg"
    assert "data" not in first
    with_data = index.get([records[0].key], return_data=True)[records[0].key]
    assert with_data["data"] == pytest.approx(records[0].data, rel=1e-6)
    index.delete([r.key for r in records[:120]] + ["absent"])
    assert set(index.get([r.key for r in records])) == {r.key for r in records[120:]}


def test_index_put_overwrites_same_key(s3vectors: Any) -> None:
    index = VectorIndex(s3vectors, "vectors-test", "images", dimension=4)
    index.put([VectorRecord("k", [0.1, 0.2, 0.3, 0.4], {"etag": "v1"})])
    index.put([VectorRecord("k", [0.4, 0.3, 0.2, 0.1], {"etag": "v2"})])
    listed = s3vectors.list_vectors(vectorBucketName="vectors-test", indexName="images")["vectors"]
    assert [v["key"] for v in listed] == ["k"]
    assert stored_etag(index.get(["k"])["k"]) == "v2"


def test_index_put_rejects_before_writing_anything(s3vectors: Any) -> None:
    index = VectorIndex(s3vectors, "vectors-test", "images", dimension=4)
    good = VectorRecord("good", [0.1, 0.2, 0.3, 0.4], {})
    zero = VectorRecord("zero", [0.0, 0.0, 0.0, 0.0], {})
    with pytest.raises(VectorRejected) as err:
        index.put([good, zero])
    assert err.value.reason == "zero_vector"
    assert index.get(["good", "zero"]) == {}


def test_index_query_shapes_the_request() -> None:
    client = boto3.client(
        "s3vectors",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    index = VectorIndex(client, "vectors-test", "images", dimension=2)
    with Stubber(client) as stub:
        stub.add_response(
            "query_vectors",
            {
                "vectors": [{"key": "a", "distance": 0.12, "metadata": {"source_key": "x.jpg"}}],
                "distanceMetric": "cosine",
            },
            expected_params={
                "vectorBucketName": "vectors-test",
                "indexName": "images",
                "queryVector": {"float32": [0.6, 0.8]},
                "topK": 5,
                "filter": {"prefix": {"$eq": "cats/"}},
                "returnMetadata": True,
                "returnDistance": True,
            },
        )
        hits = index.query([0.6, 0.8], top_k=5, filter={"prefix": {"$eq": "cats/"}})
    assert hits == [{"key": "a", "distance": 0.12, "metadata": {"source_key": "x.jpg"}}]
    with pytest.raises(ValueError, match=rf"top_k must be 1\.\.{LIMITS.query_top_k_max}\b"):
        index.query([0.6, 0.8], top_k=LIMITS.query_top_k_max + 1)


def test_index_query_follows_next_token_until_k_results() -> None:
    """Above the page size QueryVectors answers in pages: the same request plus each token."""
    client = boto3.client(
        "s3vectors",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    index = VectorIndex(client, "vectors-test", "images", dimension=2)
    request = {
        "vectorBucketName": "vectors-test",
        "indexName": "images",
        "queryVector": {"float32": [0.6, 0.8]},
        "topK": 5,
        "returnMetadata": True,
        "returnDistance": True,
    }
    with Stubber(client) as stub:
        stub.add_response(
            "query_vectors",
            {
                "vectors": [{"key": "a"}, {"key": "b"}],
                "distanceMetric": "cosine",
                "nextToken": "t1",
            },
            expected_params=request,
        )
        stub.add_response(
            "query_vectors",
            {
                "vectors": [{"key": "b"}, {"key": "c"}],
                "distanceMetric": "cosine",
                "nextToken": "t2",
            },
            expected_params={**request, "nextToken": "t1"},
        )
        stub.add_response(
            "query_vectors",
            {
                "vectors": [{"key": "d"}, {"key": "e"}, {"key": "f"}],
                "distanceMetric": "cosine",
                "nextToken": "t3",
            },
            expected_params={**request, "nextToken": "t2"},
        )
        hits = index.query([0.6, 0.8], top_k=5)
        stub.assert_no_pending_responses()
    # Repeats dropped, k results, and no call for the fourth page once k are in.
    assert [h["key"] for h in hits] == ["a", "b", "c", "d", "e"]
