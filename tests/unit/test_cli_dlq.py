"""``dlq redrive`` against SQS's StartMessageMoveTask (botocore Stubber at the network edge).

The local cloud's SQS has no move task, so the e2e tests cover the receive-send-delete
fallback; this checks the path AWS takes, and the choice between the two.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from imgsearch.config import PipelineConfig
from imgsearch.messages import for_backfill, group_id
from scripts.ops.dlq import _send_entry, redrive, redrive_dedup_id
from scripts.ops.router_dlq import redrive_router_dlq
from tests.unit.stubbed_sqs import sqs

__all__ = ["sqs"]  # the fixture

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed-dlq.fifo"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed.fifo"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:imgsearch-embed-dlq.fifo"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:imgsearch-embed.fifo"


def _arns(stubber: Stubber) -> None:
    for url, arn in ((DLQ_URL, DLQ_ARN), (QUEUE_URL, QUEUE_ARN)):
        stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": arn}},
            {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
        )


def test_move_task_is_started_and_awaited(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    _arns(stubber)
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "task-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    for status, moved in (("RUNNING", 3), ("COMPLETED", 7)):
        stubber.add_response(
            "list_message_move_tasks",
            {
                "Results": [
                    {
                        "TaskHandle": "task-1",
                        "Status": status,
                        "SourceArn": DLQ_ARN,
                        "ApproximateNumberOfMessagesMoved": moved,
                        "ApproximateNumberOfMessagesToMove": 7,
                    }
                ]
            },
            {"SourceArn": DLQ_ARN, "MaxResults": 1},
        )
    progress: list[str] = []
    report = redrive(
        PipelineConfig(),
        sqs=client,
        dlq_url=DLQ_URL,
        queue_url=QUEUE_URL,
        rate=50,
        wait=True,
        progress=progress.append,
        sleep=lambda _: None,
    )
    assert (report.method, report.task_handle, report.task_status) == (
        "move-task",
        "task-1",
        "COMPLETED",
    )
    assert report.moved == 7 and progress == ["moved 3/7"]


def test_unsupported_move_task_falls_back_to_receive_send_delete(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stubber = sqs
    _arns(stubber)
    stubber.add_client_error(
        "start_message_move_task", "UnsupportedOperation", "FIFO queues are not supported"
    )
    body = for_backfill("photos", "a.jpg", size=1, etag="e").to_json()
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": body,
        "Attributes": {"MessageGroupId": "g00007", "ApproximateReceiveCount": "5"},
    }
    stubber.add_response("receive_message", {"Messages": [message]})
    stubber.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "n-1", "MD5OfMessageBody": "x"}], "Failed": []},
        {
            "QueueUrl": QUEUE_URL,
            "Entries": [
                {
                    "Id": "0",
                    "MessageBody": body,
                    "MessageGroupId": "g00007",
                    "MessageDeduplicationId": redrive_dedup_id("m-1"),
                }
            ],
        },
    )
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": "r-1"}]},
    )
    stubber.add_response("receive_message", {"Messages": []})
    report = redrive(PipelineConfig(), sqs=client, dlq_url=DLQ_URL, queue_url=QUEUE_URL)
    assert (report.method, report.moved, report.failed) == ("receive-send-delete", 1, 0)
    assert "UnsupportedOperation" in report.notes[0]


def test_other_move_task_errors_are_not_swallowed(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    _arns(stubber)
    stubber.add_client_error(
        "start_message_move_task", "AccessDenied", "no sqs:StartMessageMoveTask"
    )
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        redrive(PipelineConfig(), sqs=client, dlq_url=DLQ_URL, queue_url=QUEUE_URL)


def test_a_message_that_failed_to_send_stays_in_the_dlq(sqs: tuple[Any, Stubber]) -> None:
    client, stubber = sqs
    _arns(stubber)
    body = for_backfill("photos", "b.jpg", size=1, etag="e").to_json()
    stubber.add_response(
        "receive_message",
        {
            "Messages": [
                {"MessageId": "m-2", "ReceiptHandle": "r-2", "Body": body, "Attributes": {}}
            ]
        },
    )
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [],
            "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "x"}],
        },
    )
    stubber.add_response("receive_message", {"Messages": []})
    report = redrive(
        PipelineConfig(), sqs=client, dlq_url=DLQ_URL, queue_url=QUEUE_URL, max_messages=5
    )
    assert (report.method, report.moved, report.failed) == ("receive-send-delete", 0, 1)
    assert "left in the DLQ" in report.errors[0]


def test_send_entry_keeps_the_group_or_derives_the_objects() -> None:
    cfg = PipelineConfig()
    body = for_backfill("photos", "c.jpg", size=1, etag="e").to_json()
    kept = _send_entry(
        cfg, {"MessageId": "m", "Body": body, "Attributes": {"MessageGroupId": "gX"}}, "0"
    )
    assert kept["MessageGroupId"] == "gX"
    derived = _send_entry(cfg, {"MessageId": "m", "Body": body, "Attributes": {}}, "0")
    assert derived["MessageGroupId"] == group_id("photos", "c.jpg", cfg.message_groups)
    assert kept["MessageDeduplicationId"] == redrive_dedup_id("m") != redrive_dedup_id("m2")


def _logs_client() -> Any:
    return boto3.client(
        "logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def test_log_lookup_keeps_the_latest_failure_line_of_the_object() -> None:
    from scripts.ops.failure_log import LogLookup

    client = _logs_client()
    line = '{"level":"WARNING","vector_key":"%s","outcome":"%s","reason":"%s","detail":"d%s"}'
    notes: list[str] = []
    with Stubber(client) as stubber:
        stubber.add_response(
            "filter_log_events",
            {
                "events": [
                    {
                        "timestamp": 1000,
                        "message": line % ("vk", "transient_failure", "throttled", 1),
                    },
                    {"timestamp": 2000, "message": line % ("other", "transient_failure", "x", 2)},
                ],
                "nextToken": "t",
            },
            {"logGroupName": "/g", "filterPattern": '"vk"', "startTime": 0},
        )
        stubber.add_response(
            "filter_log_events",
            {
                "events": [
                    {
                        "timestamp": 3000,
                        "message": line % ("vk", "transient_failure", "put_vectors_failed", 3),
                    },
                    {"timestamp": 4000, "message": line % ("vk", "embedded", "", 4)},
                    {"timestamp": 5000, "message": "START RequestId: vk"},
                ]
            },
            {"logGroupName": "/g", "filterPattern": '"vk"', "startTime": 0, "nextToken": "t"},
        )
        found = LogLookup(client, "/g", notes.append).last_failure("vk", 1)
    assert found is not None
    assert (found.reason, found.detail, found.time) == (
        "put_vectors_failed",
        "d3",
        "1970-01-01T00:00:03Z",
    )
    assert notes == []


def test_log_lookup_without_a_log_group_says_so_once() -> None:
    from scripts.ops.failure_log import LogLookup

    client = _logs_client()
    notes: list[str] = []
    with Stubber(client) as stubber:
        stubber.add_client_error("filter_log_events", "ResourceNotFoundException", "no group")
        lookup = LogLookup(client, "/aws/lambda/x", notes.append)
        assert lookup.last_failure("a", None) is None
        assert lookup.last_failure("b", None) is None  # no second call
    assert len(notes) == 1 and "/aws/lambda/x not found" in notes[0]


# --------------------------------------------------------------------------- hostile bodies

HOSTILE_BODIES = {
    "nested": "[" * 100_000 + "]" * 100_000,
    "nested-object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "bytes": bytes(range(256)).decode("latin-1").replace("\x00", ""),
    "escape": '\x1b[2J\x1b]0;owned\x07{"v":1}',
    "huge": for_backfill("photos", "k", size=1, etag="e")
    .to_json()
    .replace('"k"', '"' + "k" * 250_000 + '"'),
    "wrong-types": '{"v":true,"bucket":7,"key":["a"],"kind":null}',
    "array": "[1,2,3]",
}


def _dlq_messages(bodies: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "MessageId": name,
            "ReceiptHandle": f"r-{name}",
            "Body": body,
            "Attributes": {"MessageGroupId": "g00001", "ApproximateReceiveCount": "3"},
        }
        for name, body in bodies.items()
    ]


def test_dlq_list_reads_any_body_and_shows_an_unparseable_one_as_such(
    sqs: tuple[Any, Stubber],
) -> None:
    from scripts.ops.dlq import list_dlq
    from scripts.ops.failure_log import LogLookup

    client, stubber = sqs
    valid = for_backfill("photos", "ok.jpg", size=1, etag="e").to_json()
    messages = _dlq_messages({**HOSTILE_BODIES, "valid": valid})
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"ApproximateNumberOfMessages": str(len(messages))}},
    )
    stubber.add_response("receive_message", {"Messages": messages})
    stubber.add_response("receive_message", {"Messages": []})
    stubber.add_response("change_message_visibility_batch", {"Successful": [], "Failed": []})
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    s3vectors = boto3.client(
        "s3vectors", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    from imgsearch.vectors import VectorIndex

    index = VectorIndex(s3vectors, "vectors", "images", dimension=4, distance_metric="cosine")
    with Stubber(s3) as s3_stub, Stubber(s3vectors) as vec_stub:
        vec_stub.add_response("get_vectors", {"vectors": []})
        s3_stub.add_response("head_object", {})
        listing = list_dlq(
            sqs=client,
            s3=s3,
            index=index,
            logs=LogLookup(_logs_client(), None, lambda _: None),
            dlq_url=DLQ_URL,
            limit=10,
        )
    entries = {e.message_id: e for e in listing.entries}
    assert set(entries) == {*HOSTILE_BODIES, "valid"}
    for name in ("nested", "nested-object", "bytes", "escape"):
        assert entries[name].body_error == f"unparseable ({_json_error(HOSTILE_BODIES[name])})"
        assert entries[name].why.startswith("not a pipeline message: unparseable (")
    assert entries["nested"].body_error == "unparseable (RecursionError)"
    assert "250000 bytes of UTF-8" in (entries["huge"].body_error or "")
    assert entries["wrong-types"].body_error and entries["array"].body_error
    for entry in entries.values():  # what a terminal shows: short, and no control characters
        preview = entry.body_preview
        assert len(preview) < 400 and preview.isprintable(), (entry.message_id, preview)
    assert "(200000 characters)" in entries["nested"].body_preview
    assert entries["valid"].uri == "s3://photos/ok.jpg"
    assert (entries["valid"].object_state, entries["valid"].vector_state) == ("exists", "missing")
    assert entries["valid"].body_preview == valid
    json.dumps(listing.as_dict())  # the --output json document


def _json_error(body: str) -> str:
    try:
        json.loads(body)
    except Exception as exc:
        return type(exc).__name__
    raise AssertionError("the body parses")


def test_log_lookup_skips_lines_it_cannot_parse() -> None:
    from scripts.ops.failure_log import LogLookup

    client = _logs_client()
    good = '{"vector_key":"vk","outcome":"permanent_failure","reason":"invalid_message"}'
    hostile = [
        '{"vector_key":"vk","x":' + "[" * 100_000 + "]" * 100_000 + "}",
        "vk " + bytes(range(1, 256)).decode("latin-1"),
        '{"vector_key":"vk","outcome":["a"],"reason":{"r":1}}',
        '{"vector_key":"vk"' + "," * 10_000,
    ]
    notes: list[str] = []
    with Stubber(client) as stubber:
        stubber.add_response(
            "filter_log_events",
            {
                "events": [
                    {"timestamp": 1000, "message": good},
                    *({"timestamp": 2000 + i, "message": m} for i, m in enumerate(hostile)),
                ]
            },
        )
        found = LogLookup(client, "/g", notes.append).last_outcome("vk", None)
    assert found is not None and (found.outcome, found.reason) == (
        "permanent_failure",
        "invalid_message",
    )
    assert notes == []


ROUTER_DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-router-dlq"


def _s3_event(key: str) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {
            "bucket": {"name": "photos-bucket"},
            "object": {"key": key, "size": 10, "eTag": "abc", "sequencer": "0A1B"},
        },
    }
    return json.dumps({"Records": [record]})


def test_router_redrive_reenqueues_events_and_keeps_what_is_no_s3_event(
    sqs: tuple[Any, Stubber],
) -> None:
    """An event's objects go to the queue as the router sends them; then it leaves the DLQ."""
    client, stubber = sqs
    cfg = PipelineConfig()
    lambda_attrs = {"ErrorMessage": {"DataType": "String", "StringValue": "boom"}}
    stubber.add_response(
        "receive_message",
        {
            "Messages": [
                {"MessageId": "e-1", "ReceiptHandle": "r-1", "Body": _s3_event("photos/a.jpg"),
                 "MessageAttributes": lambda_attrs},
                {"MessageId": "e-2", "ReceiptHandle": "r-2", "Body": "{not json"},
            ]
        },
    )  # fmt: skip
    stubber.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "q-1", "MD5OfMessageBody": "x"}], "Failed": []},
    )
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": ROUTER_DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": "r-1"}]},
    )
    stubber.add_response("receive_message", {"Messages": []})
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sqs.SendMessageBatch", lambda params, **_: sent.append(params)
    )
    report = redrive_router_dlq(cfg, sqs=client, dlq_url=ROUTER_DLQ_URL, queue_url=QUEUE_URL)
    assert (report.moved, report.failed, report.messages_sent) == (1, 1, 1)
    assert "e-2: not an S3 event" in report.errors[0] and "left in the DLQ" in report.errors[0]
    [entry] = sent[0]["Entries"]
    assert entry["MessageGroupId"] == group_id("photos-bucket", "photos/a.jpg", cfg.message_groups)
    assert json.loads(entry["MessageBody"])["key"] == "photos/a.jpg"
