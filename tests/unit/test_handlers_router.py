"""The router Lambda on moto SQS, and the shared SendMessageBatch logic with a stubbed SQS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from imgsearch.contract import METRICS
from imgsearch.enqueue import NOT_IN_RESPONSE, messages_from_event, send_messages, settle_batch
from imgsearch.messages import for_backfill, group_id, parse_message
from imgsearch.selection import KeySelection
from tests.unit.imaging import jpeg
from tests.unit.lambda_harness import SOURCE, Pipeline, start


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys, prefixes=("cats/", "dogs/"))


def queued(pipe: Pipeline) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        got = pipe.sqs.receive_message(
            QueueUrl=pipe.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        messages.extend(got)
        pipe.sqs.delete_message_batch(
            QueueUrl=pipe.queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def test_routes_object_events_as_messages(pipe: Pipeline) -> None:
    pipe.put("cats/tom.jpg", jpeg())
    created = pipe.s3_record("cats/tom.jpg")
    removed = pipe.s3_record("dogs/rex.png", "delete")

    result = pipe.route({"Records": [created, removed]})

    assert result == {"routed": 2, "skipped": 0}
    messages = queued(pipe)
    bodies = sorted((parse_message(m["Body"]) for m in messages), key=lambda m: m.key)
    assert [(b.key, b.kind, b.origin) for b in bodies] == [
        ("cats/tom.jpg", "upsert", "event"),
        ("dogs/rex.png", "delete", "event"),
    ]
    by_key = {parse_message(m["Body"]).key: m for m in messages}
    assert by_key["cats/tom.jpg"]["Attributes"]["MessageGroupId"] == group_id(
        SOURCE, "cats/tom.jpg", pipe.cfg.message_groups
    )
    routed = [line for line in pipe.logs() if line.get("routing") == "routed"]
    assert {line["key"] for line in routed} == {"cats/tom.jpg", "dogs/rex.png"}
    assert pipe.metrics()[METRICS.messages_routed] == [(2.0, {"service": pipe.cfg.service_name})]


def test_skips_test_event_and_unselected_keys_with_reasons(pipe: Pipeline) -> None:
    assert pipe.route({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": SOURCE}) == {
        "routed": 0,
        "skipped": 1,
    }
    pipe.put("birds/tweety.jpg", jpeg())
    pipe.put("cats/notes.txt", b"hello")
    restore = pipe.s3_record("birds/tweety.jpg")
    restore["eventName"] = "ObjectRestore:Completed"
    result = pipe.route(
        {
            "Records": [
                pipe.s3_record("birds/tweety.jpg"),
                pipe.s3_record("cats/notes.txt"),
                restore,
            ]
        }
    )
    assert result == {"routed": 0, "skipped": 3}
    skipped = [
        (line["reason"], line["key"]) for line in pipe.logs() if line.get("routing") == "skipped"
    ]
    assert skipped == [
        ("prefix", "birds/tweety.jpg"),
        ("suffix", "cats/notes.txt"),
        ("not_object_event", "birds/tweety.jpg"),
    ]
    assert queued(pipe) == []


def test_sends_in_batches_of_ten(pipe: Pipeline) -> None:
    router = pipe.load_router()
    sizes: list[int] = []
    router.SQS.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: sizes.append(len(params["Entries"])),
    )
    records = [pipe.s3_record(f"cats/{i}.jpg", "delete") for i in range(25)]
    assert pipe.route({"Records": records})["routed"] == 25
    assert sizes == [10, 10, 5]
    assert len(queued(pipe)) == 25


def test_a_redelivered_event_collapses_and_a_reupload_does_not(pipe: Pipeline) -> None:
    pipe.put("cats/tom.jpg", jpeg())
    record = pipe.s3_record("cats/tom.jpg")
    pipe.route({"Records": [record]})
    pipe.route({"Records": [record]})  # S3 delivers at least once: SQS keeps one
    # the same bytes uploaded again (new sequencer) must not be swallowed by SQS
    reupload = pipe.s3_record("cats/tom.jpg")
    pipe.route({"Records": [reupload]})
    sequencers = [parse_message(m["Body"]).sequencer for m in queued(pipe)]
    assert sequencers == [
        record["s3"]["object"]["sequencer"],
        reupload["s3"]["object"]["sequencer"],
    ]


def test_unsendable_messages_fail_the_invocation(pipe: Pipeline) -> None:
    router = pipe.load_router()
    with Stubber(router.SQS) as sqs:
        sqs.add_response(
            "send_message_batch",
            {
                "Successful": [],
                "Failed": [{"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue"}],
            },
        )
        with pytest.raises(router.UnsentMessages, match="1 of 1 messages could not be queued"):
            pipe.route({"Records": [pipe.s3_record("cats/x.jpg", "delete")]})
    failed = [line for line in pipe.logs() if line.get("routing") == "failed"]
    assert [line["key"] for line in failed] == ["cats/x.jpg"]


def test_router_refuses_to_start_without_a_queue_url(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgsearch.config import ConfigError

    monkeypatch.setenv("IMGSEARCH_QUEUE_URL", "")
    with pytest.raises(ConfigError, match="IMGSEARCH_QUEUE_URL"):
        pipe.load_router()


# --------------------------------------------------------------------------- send_messages


def _sqs() -> Any:
    return boto3.client(
        "sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _messages(n: int) -> list[Any]:
    return [for_backfill("bkt", f"k{i}.jpg", size=1, etag=f"e{i}") for i in range(n)]


def _entries(ids: list[str]) -> list[dict[str, Any]]:
    return [
        {"Id": i, "MessageBody": ANY, "MessageGroupId": ANY, "MessageDeduplicationId": ANY}
        for i in ids
    ]


def test_send_retries_only_the_failed_entries() -> None:
    sqs, sleeps = _sqs(), list[float]()
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [
                    {"Id": str(i), "MessageId": f"m{i}", "MD5OfMessageBody": "x"} for i in range(8)
                ],
                "Failed": [
                    {"Id": "8", "SenderFault": False, "Code": "InternalError"},
                    {"Id": "9", "SenderFault": False, "Code": "InternalError"},
                ],
            },
            {"QueueUrl": "q", "Entries": _entries([str(i) for i in range(10)])},
        )
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [
                    {"Id": i, "MessageId": f"m{i}", "MD5OfMessageBody": "x"} for i in ("8", "9")
                ],
                "Failed": [],
            },
            {"QueueUrl": "q", "Entries": _entries(["8", "9"])},
        )
        report = send_messages(sqs, "q", _messages(10), groups=64, sleep=sleeps.append)
        stub.assert_no_pending_responses()
    assert (report.sent, report.failed, report.attempts) == (10, [], 2)
    assert len(sleeps) == 1


def test_sender_faults_are_not_retried_and_are_reported() -> None:
    sqs = _sqs()
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": True, "Code": "InvalidMessageContents"}],
            },
        )
        report = send_messages(sqs, "q", _messages(2), groups=64, sleep=lambda _: None)
    assert report.sent == 1
    assert [f["Code"] for f in report.failed] == ["InvalidMessageContents"]
    assert parse_message(report.failed[0]["MessageBody"]).key == "k1.jpg"


def test_server_failures_give_up_after_max_attempts() -> None:
    sqs = _sqs()
    with Stubber(sqs) as stub:
        for _ in range(3):
            stub.add_response(
                "send_message_batch",
                {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "Boom"}]},
            )
        report = send_messages(
            sqs, "q", _messages(1), groups=64, max_attempts=3, sleep=lambda _: None
        )
        stub.assert_no_pending_responses()
    assert report.sent == 0 and len(report.failed) == 1


def test_messages_from_event_reads_every_record() -> None:
    selection = KeySelection(prefixes=("",), suffixes=(".jpg",))
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:CompleteMultipartUpload",
                "eventTime": "2025-01-01T00:00:00Z",
                "s3": {
                    "bucket": {"name": "bkt"},
                    "object": {"key": "x+y.jpg", "size": 5, "eTag": "e-2"},
                },
            },
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "bkt"}}},
        ]
    }
    messages, skipped = messages_from_event(event, selection)
    assert [(m.key, m.etag, m.size) for m in messages] == [("x y.jpg", "e-2", 5)]
    assert [s.reason for s in skipped] == ["not_object_event"]


def test_settle_batch_matches_by_id_and_never_takes_silence_for_success() -> None:
    entries = [{"Id": str(i), "MessageBody": f"b{i}"} for i in range(4)]
    settled = settle_batch(
        entries,
        {
            "Successful": [{"Id": "0"}, {"Id": "0"}, {"Id": "99"}],
            "Failed": [
                {"Id": "1", "SenderFault": True, "Code": "InvalidMessageContents", "Message": "m"},
                {"Id": "2", "SenderFault": False, "Code": "InternalError"},
            ],
        },
    )
    assert settled.sent == 1  # a repeated id counts once, an unknown id not at all
    assert [(f.entry["Id"], f.code) for f in settled.rejected] == [("1", "InvalidMessageContents")]
    assert [(f.entry["Id"], f.code) for f in settled.retry] == [
        ("2", "InternalError"),
        ("3", NOT_IN_RESPONSE),
    ]


def test_entries_missing_from_the_response_are_retried_then_reported() -> None:
    sqs = _sqs()
    with Stubber(sqs) as stub:
        for _ in range(3):
            stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
        report = send_messages(
            sqs, "q", _messages(1), groups=64, max_attempts=3, sleep=lambda _: None
        )
        stub.assert_no_pending_responses()
    assert report.sent == 0
    assert [f["Code"] for f in report.failed] == [NOT_IN_RESPONSE]


def test_records_whose_bucket_or_key_s3_would_refuse_are_skipped_not_sent(pipe: Pipeline) -> None:
    pipe.put("cats/tom.jpg", jpeg())
    long_key = pipe.s3_record("cats/tom.jpg")
    long_key["s3"]["object"]["key"] = "cats/" + "k" * 1024 + ".jpg"
    bad_bucket = pipe.s3_record("cats/tom.jpg")
    bad_bucket["s3"]["bucket"]["name"] = "éé"

    result = pipe.route({"Records": [long_key, pipe.s3_record("cats/tom.jpg"), bad_bucket]})

    assert result == {"routed": 1, "skipped": 2}
    skipped = [line for line in pipe.logs() if line.get("routing") == "skipped"]
    assert [line["reason"] for line in skipped] == ["invalid_name", "invalid_name"]
    assert "'key'" in skipped[0]["detail"] and "'bucket'" in skipped[1]["detail"]
    assert [parse_message(m["Body"]).key for m in queued(pipe)] == ["cats/tom.jpg"]


def test_records_the_router_cannot_read_are_skipped_and_the_rest_routed(pipe: Pipeline) -> None:
    # Anyone who may invoke the router (or write its DLQ, which `dlq redrive --router`
    # reads with the same code) can send these: each is one skipped record, never a crash.
    pipe.put("cats/tom.jpg", jpeg())

    def bad(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        record = pipe.s3_record("cats/tom.jpg")
        node = record
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = value
        return record

    records: list[Any] = [
        1,
        None,
        "ObjectCreated:Put",
        bad(("eventName",), 7),
        bad(("eventTime",), 5),
        bad(("s3",), "x"),
        bad(("s3", "bucket"), "photos"),
        bad(("s3", "object"), "cats/tom.jpg"),
        bad(("s3", "object", "key"), [1]),
        bad(("s3", "object", "eTag"), 5),
        bad(("s3", "object", "size"), "5"),
        bad(("s3", "object", "versionId"), 5),
        bad(("s3", "object", "sequencer"), ["0A"]),
        {"s3": {"bucket": {"name": 7}, "object": {"key": [1]}}},
        pipe.s3_record("cats/tom.jpg"),
    ]

    result = pipe.route({"Records": records})

    assert result == {"routed": 1, "skipped": len(records) - 1}
    skipped = [line for line in pipe.logs() if line.get("routing") == "skipped"]
    assert {line["reason"] for line in skipped} == {"not_object_event"}
    assert all(line.get("bucket") in (None, SOURCE) for line in skipped)
    assert all(line.get("key") in (None, "cats/tom.jpg") for line in skipped)
    assert [parse_message(m["Body"]).key for m in queued(pipe)] == ["cats/tom.jpg"]


@pytest.mark.parametrize("records", ["abc", {"a": 1}, 5])
def test_an_event_whose_records_are_no_list_routes_nothing(pipe: Pipeline, records: Any) -> None:
    assert pipe.route({"Records": records}) == {"routed": 0, "skipped": 1}
    [line] = [line for line in pipe.logs() if line.get("routing") == "skipped"]
    assert line["reason"] == "not_object_event" and "'Records'" in line["detail"]
