"""Queue messages: S3 event decoding, group spreading, dedup ids, parser errors."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from imgsearch.messages import (
    MessageError,
    ObjectMessage,
    dedup_id,
    for_backfill,
    from_s3_record,
    group_id,
    is_test_event,
    parse_message,
    to_send_entry,
    vector_key,
)


def s3_record(key: str, name: str = "ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2025-11-13T12:00:00.000Z",
        "eventName": name,
        "s3": {
            "bucket": {"name": "photos"},
            "object": {"key": key, "size": 1234, "eTag": "abc123", "sequencer": "0A1B", **obj},
        },
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("holiday/beach+photo.jpg", "holiday/beach photo.jpg"),
        ("a%2Bb.jpg", "a+b.jpg"),
        ("%E7%8C%AB/%E5%86%99%E7%9C%9F.png", "猫/写真.png"),
        ("sp%20ace+and%2Bplus.webp", "sp ace and+plus.webp"),
        ("100%25.jpg", "100%.jpg"),
    ],
)
def test_event_keys_are_decoded(encoded: str, decoded: str) -> None:
    msg = from_s3_record(s3_record(encoded))
    assert msg.key == decoded
    assert msg.uri == f"s3://photos/{decoded}"


def test_created_event_becomes_upsert_with_unquoted_etag() -> None:
    msg = from_s3_record(s3_record("a.jpg", eTag='"abc123"', versionId="v1"))
    assert (msg.kind, msg.origin, msg.etag, msg.size, msg.version_id) == (
        "upsert",
        "event",
        "abc123",
        1234,
        "v1",
    )


def test_removed_events_become_deletes_without_size() -> None:
    for name in (
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "LifecycleExpiration:Delete",
        "LifecycleExpiration:DeleteMarkerCreated",
    ):
        msg = from_s3_record(s3_record("a.jpg", name=name))
        assert msg.kind == "delete"
        assert msg.size is None


def test_other_events_are_rejected_naming_the_field() -> None:
    with pytest.raises(MessageError, match="eventName"):
        from_s3_record(s3_record("a.jpg", name="ObjectRestore:Completed"))
    with pytest.raises(MessageError, match="missing field"):
        from_s3_record({"eventName": "ObjectCreated:Put"})


def test_test_event_is_recognised() -> None:
    assert is_test_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "photos"})
    assert not is_test_event(s3_record("a.jpg"))


def test_message_round_trips() -> None:
    msg = from_s3_record(s3_record("x/y z.jpg", versionId="v9"))
    assert parse_message(msg.to_json()) == msg
    assert json.loads(msg.to_json())["v"] == 1


def test_vector_key_is_deterministic_hex_within_limits() -> None:
    key = vector_key("photos", "a.jpg")
    assert key == vector_key("photos", "a.jpg")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != vector_key("photos", "b.jpg")
    assert key != vector_key("photos2", "a.jpg")
    # bucket/key boundaries cannot collide: ("ab", "c") vs ("a", "bc")
    assert vector_key("ab", "c.jpg") != vector_key("a", "bc.jpg")


def test_groups_are_stable_and_spread_objects() -> None:
    assert group_id("photos", "a.jpg", 64) == group_id("photos", "a.jpg", 64)
    counts = Counter(group_id("photos", f"img/{i}.jpg", 64) for i in range(6400))
    assert len(counts) == 64  # every group used: parallel up to the concurrency
    assert max(counts.values()) < 3 * min(counts.values())
    assert {group_id("p", f"{i}", 1) for i in range(50)} == {"g00000"}
    with pytest.raises(ValueError):
        group_id("p", "k", 0)


def test_a_redelivered_s3_event_collapses() -> None:
    first = from_s3_record(s3_record("a.jpg", eTag="abc123", sequencer="0A1B"))
    again = from_s3_record(s3_record("a.jpg", eTag="abc123", sequencer="0A1B"))
    assert dedup_id(first) == dedup_id(again)


def test_reupload_of_the_same_bytes_does_not_collapse_with_the_first_upload() -> None:
    # upload, delete, re-upload identical bytes inside SQS's five minutes: the re-upload
    # must reach the embedder, or the delete would leave the object without a vector.
    first = from_s3_record(s3_record("a.jpg", eTag="abc123", sequencer="0A1B"))
    reupload = from_s3_record(s3_record("a.jpg", eTag="abc123", sequencer="0A1D"))
    assert dedup_id(first) != dedup_id(reupload)


def test_backfill_rows_of_one_version_collapse_and_share_the_live_events_group() -> None:
    live = from_s3_record(s3_record("a.jpg", eTag="abc123"))
    backfill = for_backfill("photos", "a.jpg", size=1234, etag='"abc123"')
    resent = for_backfill("photos", "a.jpg", size=1234, etag="abc123", event_time="later")
    assert dedup_id(backfill) == dedup_id(resent)  # a resumed backfill's repeats collapse
    # live and backfill run one after the other in one group; the embedder's stored-ETag
    # check makes the second free
    assert (
        to_send_entry(live, 64, "0")["MessageGroupId"]
        == to_send_entry(backfill, 64, "1")["MessageGroupId"]
    )
    newer = for_backfill("photos", "a.jpg", size=1234, etag="def456")
    assert dedup_id(newer) != dedup_id(backfill)


def test_backfill_dedup_uses_the_etag_before_the_version_id() -> None:
    # the stack's inventory lists current versions only, without a VersionId column
    a = for_backfill("photos", "a.jpg", size=1, etag="same", version_id="v1")
    b = for_backfill("photos", "a.jpg", size=1, etag="same")
    assert dedup_id(a) == dedup_id(b)


def test_version_id_is_used_when_there_is_no_etag() -> None:
    a = for_backfill("photos", "a.jpg", size=1, etag=None, version_id="v1")
    b = for_backfill("photos", "a.jpg", size=1, etag=None, version_id="v2")
    assert dedup_id(a) != dedup_id(b)


def test_deletes_of_different_events_do_not_collapse() -> None:
    first = from_s3_record(s3_record("a.jpg", name="ObjectRemoved:Delete", sequencer="01"))
    second = from_s3_record(s3_record("a.jpg", name="ObjectRemoved:Delete", sequencer="02"))
    upsert = from_s3_record(s3_record("a.jpg"))
    assert dedup_id(first) != dedup_id(second)
    assert dedup_id(first) != dedup_id(upsert)


def test_send_entry_shape() -> None:
    msg = for_backfill("photos", "a.jpg", size=1, etag="e")
    entry = to_send_entry(msg, 64, "7")
    assert set(entry) == {"Id", "MessageBody", "MessageGroupId", "MessageDeduplicationId"}
    assert entry["Id"] == "7"
    assert parse_message(entry["MessageBody"]) == msg
    assert len(entry["MessageDeduplicationId"]) <= 128


def _body(**changes: Any) -> str:
    base: dict[str, Any] = {
        "v": 1,
        "bucket": "photos",
        "key": "a.jpg",
        "kind": "upsert",
        "origin": "event",
        "event_time": "2025-11-13T12:00:00Z",
    }
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (_body(v=2), "'v'"),
        (_body(v=...), "'v'"),
        (_body(bucket=...), "'bucket'"),
        (_body(key=""), "'key'"),
        (_body(kind="update"), "'kind'"),
        (_body(origin="cron"), "'origin'"),
        (_body(event_time=5), "'event_time'"),
        (_body(size=-1), "'size'"),
        (_body(size=True), "'size'"),
        (_body(etag=5), "'etag'"),
        (_body(color="red"), "'color'"),
    ],
)
def test_parser_errors_name_the_field(body: str, field: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_message(body)
    assert field in str(err.value)


def test_parser_accepts_a_minimal_message() -> None:
    assert parse_message(_body()) == ObjectMessage(
        bucket="photos",
        key="a.jpg",
        kind="upsert",
        origin="event",
        event_time="2025-11-13T12:00:00Z",
    )


# --------------------------------------------------------------------------- hostile bodies


def test_a_deeply_nested_body_is_a_message_error_not_a_crash() -> None:
    with pytest.raises(MessageError) as err:
        parse_message("[" * 100_000 + "]" * 100_000)
    assert "not JSON" in str(err.value)


def test_schema_version_true_is_not_version_one() -> None:
    with pytest.raises(MessageError) as err:
        parse_message(_body(v=True))
    assert "'v'" in str(err.value)


@pytest.mark.parametrize(
    "bucket",
    [
        "éé",
        "ab",
        "a" * 64,
        "Photos",
        "my_bucket",
        "-photos",
        "photos-",
        "pho..tos",
        "192.168.1.10",
        "xn--photos",
        "sthree-photos",
        "amzn-s3-demo-photos",
        "photos-s3alias",
        "photos--ol-s3",
        "photos.mrap",
        "photos--x-s3",
        "photos--table-s3",
    ],
)
def test_bucket_names_s3_would_refuse_are_message_errors(bucket: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_message(_body(bucket=bucket))
    assert "'bucket'" in str(err.value)


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "photos.2024", "my-photos-1", "1photos"])
def test_valid_bucket_names_pass(bucket: str) -> None:
    assert parse_message(_body(bucket=bucket)).bucket == bucket


def test_keys_are_at_most_1024_bytes_of_utf8() -> None:
    assert parse_message(_body(key="k" * 1024)).key == "k" * 1024
    assert parse_message(_body(key="猫" * 341)).key == "猫" * 341  # 1,023 bytes
    for key in ("k" * 1025, "猫" * 342, "k" * 256 * 1024):
        with pytest.raises(MessageError) as err:
            parse_message(_body(key=key))
        assert "'key'" in str(err.value)
        assert len(str(err.value)) < 200  # the error does not echo the key


def test_a_key_that_is_not_unicode_text_is_a_message_error() -> None:
    with pytest.raises(MessageError) as err:
        parse_message(_body(key="\ud800.jpg"))  # a lone surrogate has no UTF-8 form
    assert "'key'" in str(err.value)


def test_messages_built_by_the_router_and_the_backfill_are_validated_too() -> None:
    with pytest.raises(MessageError):
        from_s3_record(s3_record("k" * 1025))
    with pytest.raises(MessageError):
        for_backfill("Bad_Bucket", "a.jpg", size=1, etag="e")


def _with(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = record
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = value
    return record


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("eventName",), 7, "'eventName'"),
        (("eventName",), ["ObjectCreated:Put"], "'eventName'"),
        (("eventTime",), 5, "'eventTime'"),
        (("s3", "object", "key"), [1], "'key'"),
        (("s3", "object", "key"), 5, "'key'"),
        (("s3", "object", "eTag"), 5, "'eTag'"),
        (("s3", "object", "size"), "5", "'size'"),
        (("s3", "object", "size"), True, "'size'"),
        (("s3", "object", "size"), -1, "'size'"),
        (("s3", "object", "size"), 1.5, "'size'"),
        (("s3", "object", "versionId"), 5, "'versionId'"),
        (("s3", "object", "sequencer"), ["0A"], "'sequencer'"),
        (("s3", "object"), "a.jpg", "'object'"),
        (("s3", "bucket"), ["photos"], "'bucket'"),
        (("s3",), "x", "'s3'"),
    ],
)
def test_an_s3_record_with_a_wrong_typed_field_is_a_message_error_naming_it(
    path: tuple[str, ...], value: Any, field: str
) -> None:
    # Not what S3 sends, but what anyone can put in the router's DLQ (or invoke it with):
    # a record the router cannot read is skipped as one, never a crash or a bad message.
    with pytest.raises(MessageError) as err:
        from_s3_record(_with(s3_record("a.jpg"), path, value))
    assert field in str(err.value)


@pytest.mark.parametrize("record", [1, None, "ObjectCreated:Put", ["a"], True])
def test_an_s3_record_that_is_no_object_is_a_message_error(record: Any) -> None:
    with pytest.raises(MessageError, match="S3 event record"):
        from_s3_record(record)


def test_optional_s3_record_fields_may_be_missing_or_null() -> None:
    record = s3_record("a.jpg", name="ObjectRemoved:DeleteMarkerCreated", versionId=None)
    for name in ("size", "eTag", "sequencer"):
        del record["s3"]["object"][name]
    del record["eventTime"]
    msg = from_s3_record(record)
    assert (msg.kind, msg.etag, msg.version_id, msg.sequencer) == ("delete", None, None, None)
    assert msg.event_time  # now, as before
