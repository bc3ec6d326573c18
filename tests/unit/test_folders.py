"""Ancestor folders and epochs in the metadata; old vectors upgraded without a model call.

The embedder runs on moto (S3, S3 Vectors) with Bedrock stubbed, as in
``test_handlers_embedder``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from imgsearch.contract import METRICS
from imgsearch.images import ImageInfo
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.upgrade import missing_keys
from imgsearch.vectors import (
    NON_FILTERABLE_KEYS,
    build_metadata,
    dropped_keys,
    epoch_seconds,
    json_bytes,
    key_folders,
)
from tests.unit.imaging import jpeg
from tests.unit.lambda_harness import SOURCE, Pipeline, start

OLD_KEYS = ("folders", "ingested_epoch", "modified_epoch")
"""The keys vectors written before this change lack."""


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys)


def _meta(key: str, **epochs: int) -> dict[str, Any]:
    return build_metadata(
        bucket="photos",
        key=key,
        image=ImageInfo("jpeg", 4, 3),
        size=10,
        etag="e",
        model_id="m",
        ingested_at="2026-01-01T00:00:00.000Z",
        **epochs,
    )


# --------------------------------------------------------------------------- pure


def test_key_folders_lists_every_ancestor_shallowest_first() -> None:
    assert key_folders("trips/2024/05/a.jpg") == ["trips/", "trips/2024/", "trips/2024/05/"]
    assert key_folders("a.jpg") == []
    assert key_folders("a//b.jpg") == ["a/", "a//"]


def test_root_key_has_no_folders_key_rather_than_an_empty_list() -> None:
    meta = _meta("a.jpg")
    assert "folders" not in meta
    assert meta["prefix"] == ""
    assert dropped_keys(meta, "a.jpg") == []


def test_epochs_are_whole_utc_seconds() -> None:
    assert epoch_seconds("2026-01-01T00:00:00.999Z") == 1767225600
    assert epoch_seconds(datetime(2026, 1, 1, tzinfo=UTC)) == 1767225600
    assert epoch_seconds(datetime(2026, 1, 1)) == 1767225600  # naive means UTC
    meta = _meta("a/b.jpg", ingested_epoch=5, modified_epoch=4)
    assert (meta["ingested_epoch"], meta["modified_epoch"]) == (5, 4)


def test_deep_key_drops_folders_first_and_whole() -> None:
    key = ("x" * 60 + "/") * 10 + "a.jpg"  # the folders list alone is over 2 KB
    meta = _meta(key)
    assert "folders" not in meta
    assert meta["source_key"] == key and meta["prefix"] == key_prefix_of(key)
    assert "source_key_full" not in meta
    assert dropped_keys(meta, key) == ["folders"]
    filterable = {k: v for k, v in meta.items() if k not in NON_FILTERABLE_KEYS}
    assert json_bytes(filterable) <= LIMITS.filterable_metadata_max_bytes


def key_prefix_of(key: str) -> str:
    return key.rpartition("/")[0] + "/"


def test_missing_keys_ignores_what_the_long_key_rule_drops() -> None:
    deep = ("x" * 60 + "/") * 10 + "a.jpg"
    current = _meta(deep, ingested_epoch=1, modified_epoch=2)
    assert missing_keys(current, bucket="photos", key=deep, model_id="m") == []
    old = _meta("a/b.jpg", ingested_epoch=1, modified_epoch=2)
    for name in OLD_KEYS:
        del old[name]
    assert missing_keys(old, bucket="photos", key="a/b.jpg", model_id="m") == list(OLD_KEYS)
    assert missing_keys(None, bucket="photos", key="a/b.jpg", model_id="m") == []
    assert missing_keys({"etag": "e"}, bucket="photos", key="a/b.jpg", model_id="m") == []


# --------------------------------------------------------------------------- the embedder


def test_new_vector_has_folders_and_both_epochs(pipe: Pipeline) -> None:
    pipe.put("trips/2024/05/a.jpg", jpeg((32, 24)))
    pipe.bedrock_ok()
    before = int(datetime.now(UTC).timestamp())
    pipe.run(pipe.sqs_event(pipe.upsert("trips/2024/05/a.jpg")))
    [stored] = pipe.vectors().values()
    meta = stored["metadata"]
    assert meta["folders"] == ["trips/", "trips/2024/", "trips/2024/05/"]
    assert meta["prefix"] == "trips/2024/05/"
    head = pipe.s3.head_object(Bucket=SOURCE, Key="trips/2024/05/a.jpg")
    assert meta["modified_epoch"] == epoch_seconds(head["LastModified"])
    assert meta["ingested_epoch"] == epoch_seconds(meta["ingested_at"])
    assert meta["ingested_epoch"] >= before - 1
    [line] = pipe.outcomes()
    assert line["outcome"] == "embedded"
    assert "metadata_dropped" not in line


def test_dropped_folders_are_named_in_the_outcome_line(pipe: Pipeline) -> None:
    key = ("x" * 60 + "/") * 10 + "a.jpg"
    pipe.put(key, jpeg((32, 24)))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert(key)))
    [line] = pipe.outcomes()
    assert line["outcome"] == "embedded"
    assert line["metadata_dropped"] == ["folders"]


def _write_old_vector(pipe: Pipeline, key: str) -> tuple[str, list[float]]:
    """Embed ``key``, then strip the new keys from its vector, as an old embedder wrote it."""
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert(key)))
    vkey = vector_key(SOURCE, key)
    stored = pipe.vectors()[vkey]
    old = {k: v for k, v in stored["metadata"].items() if k not in OLD_KEYS}
    pipe.s3v.put_vectors(
        vectorBucketName=pipe.cfg.vector_bucket_name,
        indexName=pipe.cfg.index_name,
        vectors=[{"key": vkey, "data": stored["data"], "metadata": old}],
    )
    pipe.bedrock_requests.clear()
    return vkey, list(stored["data"]["float32"])


def test_backfill_upgrades_an_old_vector_from_its_stored_data(pipe: Pipeline) -> None:
    pipe.put("trips/2024/a.jpg", jpeg((32, 24)))
    vkey, data = _write_old_vector(pipe, "trips/2024/a.jpg")
    old_meta = pipe.vectors()[vkey]["metadata"]

    response = pipe.run(pipe.sqs_event(pipe.backfill("trips/2024/a.jpg")))

    assert response == {"batchItemFailures": []}
    assert pipe.bedrock_requests == []  # no model call paid
    line = pipe.outcomes()[-1]
    assert line["outcome"] == "metadata_upgraded"
    assert line["metadata_added"] == sorted(OLD_KEYS)
    stored = pipe.vectors()[vkey]
    assert stored["data"]["float32"] == pytest.approx(data)
    meta = stored["metadata"]
    assert meta["folders"] == ["trips/", "trips/2024/"]
    assert meta["ingested_at"] == old_meta["ingested_at"]  # when it was embedded, still
    assert meta["ingested_epoch"] == epoch_seconds(old_meta["ingested_at"])
    head = pipe.s3.head_object(Bucket=SOURCE, Key="trips/2024/a.jpg")
    assert meta["modified_epoch"] == epoch_seconds(head["LastModified"])
    assert {k: meta[k] for k in old_meta} == old_meta

    pipe.run(pipe.sqs_event(pipe.backfill("trips/2024/a.jpg")))
    again = pipe.outcomes()[-1]
    assert again["outcome"] == "unchanged"  # upgraded once, not on every run


def test_upgrade_of_a_deleted_object_deletes_its_vector(pipe: Pipeline) -> None:
    pipe.put("trips/a.jpg", jpeg((32, 24)))
    vkey, _ = _write_old_vector(pipe, "trips/a.jpg")
    message = pipe.backfill("trips/a.jpg")
    pipe.delete("trips/a.jpg")

    pipe.run(pipe.sqs_event(message))

    assert pipe.outcomes()[-1]["outcome"] == "deleted"
    assert vkey not in pipe.vectors()


def test_upgrade_of_an_overwritten_object_waits_for_its_newer_event(pipe: Pipeline) -> None:
    pipe.put("trips/a.jpg", jpeg((32, 24)))
    vkey, data = _write_old_vector(pipe, "trips/a.jpg")
    message = pipe.backfill("trips/a.jpg")  # the inventory's ETag, the stored one
    pipe.put("trips/a.jpg", jpeg((40, 30)))

    pipe.run(pipe.sqs_event(message))

    line = pipe.outcomes()[-1]
    assert line["outcome"] == "stale_skipped"
    assert pipe.bedrock_requests == []
    stored = pipe.vectors()[vkey]
    assert "folders" not in stored["metadata"]  # the newer version's event re-embeds it
    assert stored["data"]["float32"] == pytest.approx(data)


def test_an_upgrade_is_counted_in_its_own_metric(pipe: Pipeline) -> None:
    pipe.put("trips/b.jpg", jpeg((32, 24)))
    _write_old_vector(pipe, "trips/b.jpg")
    pipe.run(pipe.sqs_event(pipe.backfill("trips/b.jpg")))
    assert pipe.metrics()[METRICS.metadata_upgraded][0][0] == 1.0
