"""The embedder Lambda end to end on moto (S3, S3 Vectors) with Bedrock stubbed."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import METRICS
from imgsearch.embeddings import delivery_attempts
from imgsearch.messages import vector_key
from imgsearch.models import MARENGO_3
from tests.unit.imaging import jpeg, make_image
from tests.unit.lambda_harness import SOURCE, FakeContext, Pipeline, start


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys)


def only_outcome(pipe: Pipeline) -> dict[str, object]:
    lines = pipe.outcomes()
    assert len(lines) == 1, lines
    return lines[0]


# --------------------------------------------------------------------------- upsert


def test_upsert_embeds_and_stores_one_vector_with_metadata(pipe: Pipeline) -> None:
    data = jpeg((640, 480))
    etag = pipe.put("holiday/beach.jpg", data)
    [vector] = pipe.bedrock_ok()
    event = pipe.sqs_event(pipe.upsert("holiday/beach.jpg"))

    response = pipe.run(event)

    assert response == {"batchItemFailures": []}
    vkey = vector_key(SOURCE, "holiday/beach.jpg")
    stored = pipe.vectors()
    assert list(stored) == [vkey]
    assert stored[vkey]["data"]["float32"] == pytest.approx(vector, rel=1e-6)
    meta = stored[vkey]["metadata"]
    assert meta["source_bucket"] == SOURCE
    assert meta["source_key"] == "holiday/beach.jpg"
    assert meta["prefix"] == "holiday/"
    assert (meta["format"], meta["width"], meta["height"]) == ("jpeg", 640, 480)
    assert (meta["size"], meta["etag"]) == (len(data), etag)
    assert meta["model_id"] == pipe.cfg.model_id
    assert meta["s3_uri"] == f"s3://{SOURCE}/holiday/beach.jpg"
    assert meta["ingested_at"].endswith("Z")

    [request] = pipe.bedrock_requests
    params = request["singleEmbeddingParams"]
    assert params["embeddingPurpose"] == "GENERIC_INDEX"
    assert params["embeddingDimension"] == 256
    assert params["image"] == {
        "format": "jpeg",
        "source": {"bytes": base64.b64encode(data).decode()},
    }

    line = only_outcome(pipe)
    assert line["outcome"] == "embedded"
    assert line["bucket"] == SOURCE and line["key"] == "holiday/beach.jpg"
    assert line["vector_key"] == vkey
    assert line["message_id"] == event["Records"][0]["messageId"]
    assert "reason" not in line
    assert line["function_name"] == "imgsearch-embedder"  # Powertools context on every line

    metrics = pipe.metrics()
    assert metrics[METRICS.images_embedded] == [(1.0, {"service": pipe.cfg.service_name})]
    assert metrics[METRICS.bytes_read][0][0] == len(data)
    assert len(metrics[METRICS.embedding_latency_ms]) == 1
    assert pipe.vector_calls == ["GetVectors", "PutVectors"]


def test_format_comes_from_content_not_the_name(pipe: Pipeline) -> None:
    pipe.put("looks-like.jpg", make_image("PNG", (30, 20)))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("looks-like.jpg")))
    assert pipe.bedrock_requests[0]["singleEmbeddingParams"]["image"]["format"] == "png"
    assert next(iter(pipe.vectors().values()))["metadata"]["format"] == "png"


def test_overwrite_replaces_the_vector_instead_of_adding_one(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    first = pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    etag2 = pipe.put("a.jpg", jpeg(color=2))
    second = pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))

    stored = pipe.vectors()
    assert len(stored) == 1
    [entry] = stored.values()
    assert entry["metadata"]["etag"] == etag2
    assert entry["data"]["float32"] == pytest.approx(second[0], rel=1e-6)
    assert first != second


def test_rerun_backfill_over_indexed_object_costs_no_embedding(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.vector_calls.clear()

    response = pipe.run(pipe.sqs_event(pipe.backfill("a.jpg")))  # no Bedrock response queued

    assert response == {"batchItemFailures": []}
    assert len(pipe.bedrock_requests) == 1
    assert only_outcome(pipe)["outcome"] == "unchanged"
    assert pipe.vector_calls == ["GetVectors"]
    assert pipe.metrics()[METRICS.unchanged_skipped][0][0] == 1.0


# --------------------------------------------------------------------------- delete


def test_delete_event_removes_the_vector_without_embedding(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.delete("a.jpg")

    response = pipe.run(pipe.sqs_event(pipe.removed("a.jpg")))

    assert response == {"batchItemFailures": []}
    assert pipe.vectors() == {}
    assert len(pipe.bedrock_requests) == 1
    line = only_outcome(pipe)
    assert line["outcome"] == "deleted"
    assert line["vector_key"] == vector_key(SOURCE, "a.jpg")
    assert pipe.metrics()[METRICS.vectors_deleted][0][0] == 1.0


def test_delete_event_for_an_object_that_exists_again_keeps_it_indexed(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    delete = pipe.removed("a.jpg")
    pipe.delete("a.jpg")
    etag2 = pipe.put("a.jpg", jpeg(color=2))  # re-uploaded before the delete is handled
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(delete))

    assert only_outcome(pipe)["outcome"] == "embedded"
    [entry] = pipe.vectors().values()
    assert entry["metadata"]["etag"] == etag2


def test_upsert_of_an_object_already_gone_deletes(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    message = pipe.upsert("a.jpg")
    pipe.delete("a.jpg")
    pipe.run(pipe.sqs_event(message))
    assert only_outcome(pipe)["outcome"] == "deleted"
    assert pipe.vectors() == {}
    assert pipe.bedrock_requests == []


# --------------------------------------------------------------------------- reorderings


def test_put_v2_before_put_v1_keeps_v2(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    v1 = pipe.upsert("a.jpg")
    etag2 = pipe.put("a.jpg", jpeg(color=2))
    v2 = pipe.upsert("a.jpg")
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(v2))
    pipe.run(pipe.sqs_event(v1))

    line = only_outcome(pipe)
    assert line["outcome"] == "stale_skipped"
    assert len(pipe.bedrock_requests) == 1
    [entry] = pipe.vectors().values()
    assert entry["metadata"]["etag"] == etag2
    assert pipe.metrics()[METRICS.stale_skipped][0][0] == 1.0


def test_delete_delivered_before_the_put_it_follows(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    put = pipe.upsert("a.jpg")
    pipe.delete("a.jpg")
    delete = pipe.removed("a.jpg")

    pipe.run(pipe.sqs_event(delete))
    assert only_outcome(pipe)["outcome"] == "deleted"
    pipe.run(pipe.sqs_event(put))
    assert only_outcome(pipe)["outcome"] == "deleted"
    assert pipe.vectors() == {}
    assert pipe.bedrock_requests == []


def test_delete_then_reput_delivered_in_either_order(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.delete("a.jpg")
    delete = pipe.removed("a.jpg")
    etag2 = pipe.put("a.jpg", jpeg(color=2))
    reput = pipe.upsert("a.jpg")
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(reput))
    assert only_outcome(pipe)["outcome"] == "embedded"
    pipe.run(pipe.sqs_event(delete))
    assert only_outcome(pipe)["outcome"] == "unchanged"
    [entry] = pipe.vectors().values()
    assert entry["metadata"]["etag"] == etag2


# --------------------------------------------------------------------------- permanent


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is a text file that calls itself a jpeg", "unknown_format"),
        (jpeg((300, 200))[:-400], "truncated"),
        (b"", "empty"),
        (b"\xff\xd8" + b"\xff\xda\x00\x08" + b"\x00" * 6 + b"\xff\xd9", "corrupt"),
        (make_image("BMP"), "unknown_format"),
    ],
)
def test_bad_files_are_permanent_failures_acknowledged(
    pipe: Pipeline, data: bytes, reason: str
) -> None:
    pipe.put("bad.jpg", data)
    response = pipe.run(pipe.sqs_event(pipe.upsert("bad.jpg")))

    assert response == {"batchItemFailures": []}  # acknowledged: not retried forever
    line = only_outcome(pipe)
    assert line["outcome"] == "permanent_failure"
    assert line["reason"] == reason
    assert line["detail"]
    assert pipe.bedrock_requests == []
    assert pipe.vectors() == {}
    metrics = pipe.metrics()
    assert metrics[METRICS.permanent_failures][0][0] == 1.0
    assert metrics[METRICS.permanent_failures_by_reason] == [
        (1.0, {"service": pipe.cfg.service_name, "reason": reason})
    ]


def test_overwrite_with_a_corrupt_file_removes_the_old_vector(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.put("a.jpg", b"garbage")
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"], line["stale_vector_deleted"]) == (
        "permanent_failure",
        "unknown_format",
        True,
    )
    assert pipe.vectors() == {}


def test_bedrock_validation_error_is_permanent(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_error("ValidationException", 400, message="Unable to process the image")
    response = pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    assert response == {"batchItemFailures": []}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "model_rejected_input")
    assert "Unable to process the image" in str(line["detail"])
    assert "earlier_vector_kept" not in line  # there was no earlier vector


def test_invalid_message_body_is_permanent(pipe: Pipeline) -> None:
    event = pipe.sqs_event('{"v": 1, "bucket": "b"}')
    response = pipe.run(event)
    assert response == {"batchItemFailures": []}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "invalid_message")
    assert "'key'" in str(line["detail"])
    assert line["message_id"] == event["Records"][0]["messageId"]


def test_all_zero_embedding_is_rejected_not_written(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_vector([0.0] * 256)  # a cosine index cannot rank it
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "zero_vector")
    assert pipe.vectors() == {}


# --------------------------------------------------------------------------- transient


def test_throttling_then_success(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_error("ThrottlingException", 429, count=2)
    pipe.bedrock_ok()

    response = pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))

    assert response == {"batchItemFailures": []}
    outcome = only_outcome(pipe)
    assert outcome["outcome"] == "embedded"
    assert outcome["retries"] == 2
    retry_lines = [line for line in pipe.logs() if "retry_reason" in line]
    assert [line["attempt"] for line in retry_lines] == [1, 2]
    assert all(line["key"] == "a.jpg" for line in retry_lines)
    assert len(pipe.vectors()) == 1
    assert pipe.metrics()[METRICS.transient_retries][0][0] == 2.0


def test_throttling_until_the_time_budget_runs_out(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_error("ThrottlingException", 429, count=10)
    event = pipe.sqs_event(pipe.upsert("a.jpg"))

    # 1.5 s left: 1 s is reserved, so retries must stop within about half a second.
    response = pipe.run(event, FakeContext(remaining_ms=1500))

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "throttled")
    assert "time budget" in str(line["detail"])
    assert pipe.vectors() == {}
    assert METRICS.images_embedded not in pipe.metrics()


def test_vector_index_unavailable_is_transient(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.s3v.delete_index(
        vectorBucketName=pipe.cfg.vector_bucket_name, indexName=pipe.cfg.index_name
    )
    event = pipe.sqs_event(pipe.upsert("a.jpg"))
    response = pipe.run(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "s3vectors_error")
    assert pipe.metrics()[METRICS.transient_failures][0][0] == 1.0


def test_put_vectors_failure_is_transient_and_nothing_is_lost(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    with Stubber(pipe.embedder.S3VECTORS) as s3v:
        s3v.add_response("get_vectors", {"vectors": []})
        s3v.add_client_error("put_vectors", "ValidationException", "index dimension is 1024")
        event = pipe.sqs_event(pipe.upsert("a.jpg"))
        response = pipe.run(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "put_vectors_failed")
    assert "index dimension is 1024" in str(line["detail"])


def test_no_time_left_hands_every_message_back(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.put("b.jpg", jpeg())
    event = pipe.sqs_event(pipe.upsert("a.jpg"), pipe.upsert("b.jpg"))
    response = pipe.run(event, FakeContext(remaining_ms=0))
    assert len(response["batchItemFailures"]) == 2
    assert {line["reason"] for line in pipe.outcomes()} <= {
        "deadline_exceeded",
        "earlier_message_in_group_failed",
    }
    assert pipe.bedrock_requests == []


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "key", ["with space/beach photo.jpg", "plus+sign/a+b.jpg", "猫/写真 1.png", "100%/x.jpeg"]
)
def test_awkward_keys_round_trip_through_the_router(pipe: Pipeline, key: str) -> None:
    pipe.put(key, make_image("PNG" if key.endswith(".png") else "JPEG"))
    routed = pipe.route({"Records": [pipe.s3_record(key)]})
    assert routed["routed"] == 1
    event = pipe.received_event()
    assert len(event["Records"]) == 1
    pipe.bedrock_ok()

    pipe.run(event)

    line = only_outcome(pipe)
    assert (line["outcome"], line["key"]) == ("embedded", key)
    [entry] = pipe.vectors().values()
    assert entry["key"] == vector_key(SOURCE, key)
    assert entry["metadata"]["source_key"] == key
    assert entry["metadata"]["s3_uri"] == f"s3://{SOURCE}/{key}"


# --------------------------------------------------------------------------- large images


def test_image_above_the_inline_limit_goes_by_s3_location(pipe: Pipeline) -> None:
    small = jpeg((800, 600))
    padding = b"\0" * (pipe.cfg.model.max_inline_image_bytes + 1024 - len(small))
    pipe.put("big.jpg", small + padding)  # bytes after EOI are ignored by decoders
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(pipe.upsert("big.jpg")))

    line = only_outcome(pipe)
    assert (line["outcome"], line["route"]) == ("embedded", "s3")
    image = pipe.bedrock_requests[0]["singleEmbeddingParams"]["image"]
    assert image == {"format": "jpeg", "source": {"s3Location": {"uri": f"s3://{SOURCE}/big.jpg"}}}
    meta = next(iter(pipe.vectors().values()))["metadata"]
    assert (meta["width"], meta["height"], meta["size"]) == (800, 600, len(small) + len(padding))
    # only the header was read, not the whole object
    assert pipe.metrics()[METRICS.bytes_read][0][0] < 2 * 1024 * 1024


# --------------------------------------------------------------------------- batches


@pytest.fixture
def batch_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys, batch_size=10, embed_pool_size=4)


def test_batch_embeds_concurrently_and_writes_once(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    keys = [f"img/{i}.jpg" for i in range(8)]
    for i, key in enumerate(keys):
        pipe.put(key, jpeg(color=i))
    pipe.bedrock_ok(len(keys))

    response = pipe.run(pipe.sqs_event(*[pipe.upsert(k) for k in keys]))

    assert response == {"batchItemFailures": []}
    assert pipe.put_vector_counts == [8]  # one PutVectors for the whole batch
    assert {v["metadata"]["source_key"] for v in pipe.vectors().values()} == set(keys)
    assert [line["outcome"] for line in pipe.outcomes()] == ["embedded"] * 8
    assert pipe.metrics()[METRICS.images_embedded][0][0] == 8.0


def test_batch_reports_only_the_failed_messages(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    pipe.put("good.jpg", jpeg())
    pipe.put("bad.jpg", b"not an image")
    pipe.put("gone.jpg", jpeg())
    gone = pipe.upsert("gone.jpg")
    pipe.delete("gone.jpg")
    pipe.bedrock_ok()
    invalid = '{"v": 99}'

    event = pipe.sqs_event(pipe.upsert("good.jpg"), pipe.upsert("bad.jpg"), gone, invalid)
    response = pipe.run(event)

    assert response == {"batchItemFailures": []}
    outcomes = {line["message_id"]: line["outcome"] for line in pipe.outcomes()}
    ids = [r["messageId"] for r in event["Records"]]
    assert [outcomes[i] for i in ids] == [
        "embedded",
        "permanent_failure",
        "deleted",
        "permanent_failure",
    ]


@pytest.fixture
def serial_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    # One worker: stubbed Bedrock responses are consumed in message order.
    yield from start(monkeypatch, capsys, batch_size=10, embed_pool_size=1)


def test_batch_transient_failure_redelivers_that_message_only(serial_pipe: Pipeline) -> None:
    pipe = serial_pipe
    pipe.put("denied.jpg", jpeg(color=1))
    pipe.put("fine.jpg", jpeg(color=2))
    event = pipe.sqs_event(pipe.upsert("denied.jpg"), pipe.upsert("fine.jpg"))
    groups = [r["attributes"]["MessageGroupId"] for r in event["Records"]]
    assert groups[0] != groups[1]
    pipe.bedrock_error("AccessDeniedException", 403)  # not retried now, redelivered
    pipe.bedrock_ok()

    response = pipe.run(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    by_key = {line["key"]: line for line in pipe.outcomes()}
    assert (by_key["denied.jpg"]["outcome"], by_key["denied.jpg"]["reason"]) == (
        "transient_failure",
        "access_denied",
    )
    assert by_key["fine.jpg"]["outcome"] == "embedded"
    assert {v["metadata"]["source_key"] for v in pipe.vectors().values()} == {"fine.jpg"}


@pytest.fixture
def one_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    # One image at a time (pool 1): the second message is still waiting when the first
    # fails. With a pool, other objects' messages run alongside (test_batch_lanes).
    yield from start(monkeypatch, capsys, batch_size=10, message_groups=1, embed_pool_size=1)


def test_a_failed_message_holds_back_the_rest_of_its_group(one_group: Pipeline) -> None:
    pipe = one_group
    pipe.put("first.jpg", jpeg(color=1))
    pipe.put("second.jpg", jpeg(color=2))
    event = pipe.sqs_event(pipe.upsert("first.jpg"), pipe.upsert("second.jpg"))
    pipe.bedrock_error("AccessDeniedException", 403)

    response = pipe.run(event)

    ids = [r["messageId"] for r in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}
    lines = pipe.outcomes()
    assert [(line["key"], line["outcome"], line["reason"]) for line in lines] == [
        ("first.jpg", "transient_failure", "access_denied"),
        ("second.jpg", "transient_failure", "earlier_message_in_group_failed"),
    ]
    assert len(pipe.bedrock_requests) == 1  # the second was never started


def test_same_object_twice_in_one_batch_keeps_order(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    pipe.put("a.jpg", jpeg(color=1))
    put = pipe.upsert("a.jpg")
    pipe.delete("a.jpg")
    delete = pipe.removed("a.jpg")
    # Object gone: the put converges to a delete, the delete deletes; nothing stored.
    response = pipe.run(pipe.sqs_event(put, delete))
    assert response == {"batchItemFailures": []}
    assert [line["outcome"] for line in pipe.outcomes()] == ["deleted", "deleted"]
    assert pipe.vectors() == {}


def test_duplicate_delivery_in_one_batch_embeds_once(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    etag = pipe.put("a.jpg", jpeg(color=3))
    put = pipe.upsert("a.jpg")
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(put, put))
    assert [line["outcome"] for line in pipe.outcomes()] == ["embedded", "unchanged"]
    assert len(pipe.bedrock_requests) == 1
    assert pipe.put_vector_counts == [1]
    [entry] = pipe.vectors().values()
    assert entry["metadata"]["etag"] == etag


# --------------------------------------------------------------------------- Marengo


@pytest.fixture
def marengo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys, model_id=MARENGO_3.model_id, dimension=512)


def test_marengo_is_a_drop_in_model(marengo: Pipeline) -> None:
    data = make_image("PNG", (128, 128))
    marengo.put("m.png", data)
    marengo.bedrock_ok()
    marengo.run(marengo.sqs_event(marengo.upsert("m.png")))
    assert marengo.bedrock_requests == [
        {
            "inputType": "image",
            "image": {"mediaSource": {"base64String": base64.b64encode(data).decode()}},
        }
    ]
    [entry] = marengo.vectors().values()
    assert entry["metadata"]["model_id"] == MARENGO_3.model_id
    assert len(entry["data"]["float32"]) == 512


def test_marengo_rejects_gif_and_oversized_images(marengo: Pipeline) -> None:
    marengo.put("a.gif", make_image("GIF"))
    marengo.put("big.jpg", jpeg() + b"\0" * (MARENGO_3.max_image_bytes + 10))
    marengo.run(marengo.sqs_event(marengo.upsert("a.gif")))
    assert only_outcome(marengo)["reason"] == "unsupported_format"
    marengo.run(marengo.sqs_event(marengo.upsert("big.jpg")))
    assert only_outcome(marengo)["reason"] == "too_large"
    assert marengo.bedrock_requests == []


# --------------------------------------------------------------------------- hostile input


def _raw(**fields: object) -> str:
    """A message body with ``fields`` over a schema-valid upsert of ``photo-source/a.jpg``."""
    body: dict[str, object] = {
        "v": 1,
        "bucket": SOURCE,
        "key": "a.jpg",
        "kind": "upsert",
        "origin": "event",
        "event_time": "2025-11-13T12:00:00.000Z",
    }
    body.update(fields)
    return json.dumps(body)


def test_a_deeply_nested_body_fails_alone_and_its_batch_finishes(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    pipe.put("a.jpg", jpeg(color=1))
    pipe.put("b.jpg", jpeg(color=2))
    pipe.bedrock_ok(2)
    nested = "[" * 100_000 + "]" * 100_000
    event = pipe.sqs_event(pipe.upsert("a.jpg"), nested, pipe.upsert("b.jpg"))

    response = pipe.run(event)

    assert response == {"batchItemFailures": []}
    by_id = {line["message_id"]: line for line in pipe.outcomes()}
    ids = [r["messageId"] for r in event["Records"]]
    assert [(by_id[i]["outcome"], by_id[i].get("reason")) for i in ids] == [
        ("embedded", None),
        ("permanent_failure", "invalid_message"),
        ("embedded", None),
    ]
    assert len(pipe.vectors()) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_raw(bucket="éé"), "'bucket'"),
        (_raw(bucket="Photo_Source"), "'bucket'"),
        (_raw(key="k" * 256 * 1024), "'key'"),
        (_raw(key="\ud800.jpg"), "'key'"),
        (_raw(v=True), "'v'"),
    ],
    ids=["non-ascii-bucket", "legacy-bucket", "256kb-key", "lone-surrogate", "v-true"],
)
def test_messages_that_can_never_succeed_are_permanent_invalid_message(
    pipe: Pipeline, body: str, field: str
) -> None:
    pipe.put("a.jpg", jpeg())

    response = pipe.run(pipe.sqs_event(body))

    assert response == {"batchItemFailures": []}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "invalid_message")
    assert field in str(line["detail"])
    assert pipe.bedrock_requests == []
    assert pipe.metrics()[METRICS.permanent_failures_by_reason] == [
        (1.0, {"service": pipe.cfg.service_name, "reason": "invalid_message"})
    ]


def test_botocore_refusing_a_messages_bucket_is_permanent_invalid_message(pipe: Pipeline) -> None:
    def refuse(**_: object) -> None:
        raise ParamValidationError(report="Invalid bucket name")

    pipe.embedder.S3.meta.events.register("before-parameter-build.s3.GetObject", refuse)
    pipe.put("a.jpg", jpeg())

    response = pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))

    assert response == {"batchItemFailures": []}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "invalid_message")
    assert "Invalid bucket name" in str(line["detail"])


# --------------------------------------------------------------------------- batch isolation


class _Refused:
    status_code = 400


def refuse_put_vectors_with(pipe: Pipeline, *keys: str) -> None:
    """S3 Vectors refuses any PutVectors carrying the vector of one of ``keys``."""
    poison = {vector_key(SOURCE, k) for k in keys}

    def before_call(params: dict[str, Any], **_: Any) -> tuple[_Refused, dict[str, Any]] | None:
        sent = {v["key"] for v in json.loads(params["body"])["vectors"]}
        if not sent & poison:
            return None
        error = {"Code": "ValidationException", "Message": "Invalid vector"}
        return _Refused(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    pipe.embedder.S3VECTORS.meta.events.register("before-call.s3vectors.PutVectors", before_call)


def test_a_refused_vector_fails_only_its_own_message(batch_pipe: Pipeline) -> None:
    pipe = batch_pipe
    keys = ["good1.jpg", "poison.jpg", "good2.jpg"]
    for i, key in enumerate(keys):
        pipe.put(key, jpeg(color=i))
    pipe.bedrock_ok(3)
    refuse_put_vectors_with(pipe, "poison.jpg")
    event = pipe.sqs_event(*[pipe.upsert(k) for k in keys])
    assert len({r["attributes"]["MessageGroupId"] for r in event["Records"]}) == 3

    response = pipe.run(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    by_key = {line["key"]: line for line in pipe.outcomes()}
    assert (by_key["poison.jpg"]["outcome"], by_key["poison.jpg"]["reason"]) == (
        "transient_failure",
        "put_vectors_failed",
    )
    assert "Invalid vector" in by_key["poison.jpg"]["detail"]
    assert by_key["good1.jpg"]["outcome"] == by_key["good2.jpg"]["outcome"] == "embedded"
    assert {v["metadata"]["source_key"] for v in pipe.vectors().values()} == {
        "good1.jpg",
        "good2.jpg",
    }
    metrics = pipe.metrics()
    assert metrics[METRICS.images_embedded][0][0] == 2.0
    assert metrics[METRICS.transient_failures][0][0] == 1.0


def test_later_messages_of_a_refused_vectors_group_follow_it(one_group: Pipeline) -> None:
    pipe = one_group
    pipe.put("poison.jpg", jpeg(color=1))
    pipe.put("after.jpg", jpeg(color=2))
    pipe.put("before.jpg", jpeg(color=3))
    pipe.bedrock_ok(3)
    refuse_put_vectors_with(pipe, "poison.jpg")
    event = pipe.sqs_event(
        pipe.upsert("before.jpg"), pipe.upsert("poison.jpg"), pipe.upsert("after.jpg")
    )

    response = pipe.run(event)

    ids = [r["messageId"] for r in event["Records"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ids[1:]]}
    assert [(line["key"], line["outcome"], line.get("reason")) for line in pipe.outcomes()] == [
        ("before.jpg", "embedded", None),
        ("poison.jpg", "transient_failure", "put_vectors_failed"),
        ("after.jpg", "transient_failure", "earlier_message_in_group_failed"),
    ]


# --------------------------------------------------------------------------- Bedrock's word


@pytest.mark.parametrize(
    "message",
    [
        "Invocation of model ID amazon.nova-2-multimodal-embeddings-v1:0 with on-demand "
        "throughput isn't supported. Retry your request with the ID or ARN of an inference "
        "profile that contains this model.",
        "The provided model identifier is invalid.",
    ],
)
def test_a_configuration_validation_error_keeps_the_vector_and_the_message(
    pipe: Pipeline, message: str
) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    old_etag = next(iter(pipe.vectors().values()))["metadata"]["etag"]
    pipe.put("a.jpg", jpeg(color=2))
    pipe.bedrock_error("ValidationException", 400, message=message)
    event = pipe.sqs_event(pipe.upsert("a.jpg"))

    response = pipe.run(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    line = only_outcome(pipe)
    assert line["outcome"] == "transient_failure"
    assert line["reason"] == "model_configuration_error"
    assert message in str(line["detail"])
    assert [v["metadata"]["etag"] for v in pipe.vectors().values()] == [old_etag]


def test_a_model_rejection_of_a_new_version_keeps_the_earlier_vector(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.put("a.jpg", jpeg(color=2))
    pipe.bedrock_error("ValidationException", 400, message="Unable to process the image")

    response = pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))

    assert response == {"batchItemFailures": []}
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("permanent_failure", "model_rejected_input")
    assert "stale_vector_deleted" not in line
    assert line["earlier_vector_kept"] is True  # what the local cloud's accounting allows
    assert len(pipe.vectors()) == 1  # a model's answer may be about configuration


# --------------------------------------------------------------------------- time budget


def test_config_refuses_an_embedder_timeout_that_leaves_no_time_budget() -> None:
    with pytest.raises(ConfigError) as err:
        PipelineConfig(embedder_timeout_seconds=1)
    assert "'embedder_timeout_seconds'" in str(err.value)
    assert "minimum 2" in str(err.value)


def test_the_shortest_accepted_timeout_leaves_time_for_a_message(pipe: Pipeline) -> None:
    shortest = PipelineConfig(embedder_timeout_seconds=2).embedder_timeout_seconds
    remaining = pipe.embedder.deadline_for(FakeContext(remaining_ms=shortest * 1000))
    assert remaining - time.monotonic() > 0.5


def test_any_exception_while_one_message_is_handled_ends_that_message_alone(
    batch_pipe: Pipeline,
) -> None:
    pipe = batch_pipe
    for key in ("a.jpg", "boom.jpg", "b.jpg"):
        pipe.put(key, jpeg())
    pipe.bedrock_ok(2)

    def explode(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == "boom.jpg":
            raise RecursionError("maximum recursion depth exceeded")

    pipe.embedder.S3.meta.events.register("before-parameter-build.s3.GetObject", explode)
    event = pipe.sqs_event(*[pipe.upsert(k) for k in ("a.jpg", "boom.jpg", "b.jpg")])

    response = pipe.run(event)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    by_key = {line["key"]: line for line in pipe.outcomes()}
    assert (by_key["boom.jpg"]["outcome"], by_key["boom.jpg"]["reason"]) == (
        "transient_failure",
        "unexpected_error",
    )
    assert "RecursionError" in by_key["boom.jpg"]["detail"]
    assert by_key["a.jpg"]["outcome"] == by_key["b.jpg"]["outcome"] == "embedded"


# --------------------------------------------------------------------------- the bucket owner

OWNER = "123456789012"  # moto's account: the bucket's real owner


@pytest.fixture
def owned_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys, source_bucket_owner=OWNER)


def _s3_params(pipe: Pipeline) -> list[tuple[str, dict[str, Any]]]:
    """(operation, params) of every S3 request the embedder builds."""
    seen: list[tuple[str, dict[str, Any]]] = []
    pipe.embedder.S3.meta.events.register(
        "provide-client-params.s3.*",
        lambda params, model, **_: seen.append((model.name, dict(params))),
    )
    return seen


def test_every_source_bucket_call_names_the_expected_owner(owned_pipe: Pipeline) -> None:
    pipe = owned_pipe
    seen = _s3_params(pipe)
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.delete("a.jpg")
    pipe.run(pipe.sqs_event(pipe.removed("a.jpg")))

    assert [op for op, _ in seen] == ["GetObject", "HeadObject"]
    assert all(params["ExpectedBucketOwner"] == OWNER for _, params in seen)
    assert pipe.vectors() == {}


def test_bedrock_reads_by_s3_location_only_from_the_expected_owner(owned_pipe: Pipeline) -> None:
    pipe = owned_pipe
    seen = _s3_params(pipe)
    small = jpeg((800, 600))
    pipe.put("big.jpg", small + b"\0" * (pipe.cfg.model.max_inline_image_bytes + 1024))
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(pipe.upsert("big.jpg")))

    source = pipe.bedrock_requests[0]["singleEmbeddingParams"]["image"]["source"]
    assert source == {"s3Location": {"uri": f"s3://{SOURCE}/big.jpg", "bucketOwner": OWNER}}
    assert seen and all(params["ExpectedBucketOwner"] == OWNER for _, params in seen)


def test_access_denied_names_the_settings_that_fix_it(pipe: Pipeline) -> None:
    """S3 answers a missing kms:Decrypt (SSE-KMS) with AccessDenied: say which setting."""
    pipe.put("a.jpg", jpeg())
    event = pipe.sqs_event(pipe.upsert("a.jpg"))
    with Stubber(pipe.embedder.S3) as s3:
        s3.add_client_error(
            "get_object",
            "AccessDenied",
            "User is not authorized to perform: kms:Decrypt",
            http_status_code=403,
        )
        response = pipe.run(event)

    assert len(response["batchItemFailures"]) == 1  # redelivered, then the DLQ
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "s3_access_denied")
    detail = str(line["detail"])
    assert "AccessDenied" in detail and "kms:Decrypt" in detail
    assert "set source_kms_key_arn" in detail and "source_bucket_owner" in detail


# --------------------------------------------------------------------------- the model budget


def _delivery(pipe: Pipeline, key: str, receive_count: int) -> dict[str, Any]:
    event = pipe.sqs_event(pipe.upsert(key))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return event


def test_a_later_delivery_gets_only_its_share_of_the_model_attempts(pipe: Pipeline) -> None:
    # default: 20 attempts over 5 deliveries = 10, 7, 1, 1, 1
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_error("ThrottlingException", 429, count=1)

    response = pipe.run(_delivery(pipe, "a.jpg", receive_count=3))

    assert len(response["batchItemFailures"]) == 1
    assert len(pipe.bedrock_requests) == 1  # not 10 attempts, as on every delivery before
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "throttled")
    assert "max_model_attempts_per_object=20" in str(line["detail"])
    assert "delivery 3 of at most 5" in str(line["detail"])


@pytest.fixture
def small_budget_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys, max_model_attempts_per_object=2)


def test_a_spent_budget_calls_no_model_and_sends_the_message_on_to_the_dlq(
    small_budget_pipe: Pipeline,
) -> None:
    pipe = small_budget_pipe
    pipe.put("a.jpg", jpeg())

    response = pipe.run(_delivery(pipe, "a.jpg", receive_count=3))  # 1 + 1 already spent

    assert len(response["batchItemFailures"]) == 1
    assert pipe.bedrock_requests == []
    line = only_outcome(pipe)
    assert (line["outcome"], line["reason"]) == ("transient_failure", "model_attempts_spent")
    assert "max_model_attempts_per_object=2" in str(line["detail"])
    assert pipe.vectors() == {}


@given(
    total=st.integers(1, 200),
    per_delivery=st.integers(1, 20),
    deliveries=st.integers(1, 50),
)
def test_the_attempts_of_all_deliveries_never_exceed_the_budget(
    total: int, per_delivery: int, deliveries: int
) -> None:
    shares = [
        delivery_attempts(n, per_delivery=per_delivery, total=total, deliveries=deliveries)
        for n in range(1, deliveries + 3)
    ]
    assert sum(shares) <= total
    assert all(0 <= share <= per_delivery for share in shares)
    assert shares[0] == min(per_delivery, max(1, total - (deliveries - 1)))  # first goes far
    # while the budget lasts, no delivery is left without an attempt
    assert all(share >= 1 for share in shares[: min(total, deliveries)])
