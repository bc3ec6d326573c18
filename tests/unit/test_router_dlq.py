"""``dlq list --router`` / ``dlq redrive --router`` on bodies nobody should have written.

The router's DLQ is a standard queue anyone with ``sqs:SendMessage`` can write; its
bodies are read as S3 events. Whatever they hold, a listing shows each one (as
unreadable when it is), and a redrive leaves it in the DLQ with an error line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from imgsearch.config import PipelineConfig
from imgsearch.selection import KeySelection
from scripts.ops.router_dlq import describe, redrive_router_dlq
from tests.unit.stubbed_sqs import sqs

__all__ = ["sqs"]  # the fixture

ROUTER_DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-router-dlq"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed.fifo"
SELECTION = KeySelection(prefixes=("",), suffixes=(".jpg",))


def _record(**changes: Any) -> dict[str, Any]:
    """A real-looking S3 record; ``changes`` replace the object's fields or the record's."""
    obj: dict[str, Any] = {"key": "photos/a.jpg", "size": 10, "eTag": "abc", "sequencer": "0A"}
    record: dict[str, Any] = {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": "photos-bucket"}, "object": obj},
    }
    for name, value in changes.items():
        (record if name in record else obj)[name] = value
    return record


def _event(*records: Any) -> str:
    return json.dumps({"Records": list(records)})


NOT_JSON = {
    "nested": "[" * 100_000 + "]" * 100_000,
    "nested-object": '{"Records":' * 50_000 + "1" + "}" * 50_000,
    "cut-short": '{"Records":[',
}
UNREADABLE_RECORDS = {
    "int-record": _event(1),
    "null-record": _event(None),
    "event-name-int": _event(_record(eventName=7)),
    "key-list": _event(_record(key=[1])),
    "etag-int": _event(_record(eTag=5)),
    "size-text": _event(_record(size="5")),
    "version-int": _event(_record(versionId=5)),
    "sequencer-list": _event(_record(sequencer=["0A"])),
    "time-int": _event(_record(eventTime=5)),
    "s3-text": _event(_record(s3="x")),
    "bucket-int": _event({"s3": {"bucket": {"name": 7}, "object": {"key": [1]}}}),
}


def _message(name: str, body: str) -> dict[str, Any]:
    return {"MessageId": name, "ReceiptHandle": f"r-{name}", "Body": body}


@pytest.mark.parametrize("name", sorted(NOT_JSON))
def test_a_body_that_is_not_json_is_listed_as_such(name: str) -> None:
    entry = describe(_message(name, NOT_JSON[name]), SELECTION)  # type: ignore[arg-type]
    assert entry.body_error is not None and entry.body_error.startswith("not JSON (")
    assert entry.why.startswith("not an S3 event: not JSON (")
    assert entry.objects == [] and len(entry.body_preview) < 400
    json.dumps(entry.as_dict())  # the --output json document
    if name == "nested":
        assert entry.body_error == "not JSON (RecursionError)"


@pytest.mark.parametrize("name", sorted(UNREADABLE_RECORDS))
def test_a_record_the_router_cannot_read_is_listed_as_skipped(name: str) -> None:
    body = _event(_record(key="photos/ok.jpg"), *json.loads(UNREADABLE_RECORDS[name])["Records"])
    entry = describe(_message(name, body), SELECTION)  # type: ignore[arg-type]
    assert entry.objects == ["upsert s3://photos-bucket/photos/ok.jpg"]
    [skipped] = entry.skipped
    assert skipped.startswith("not_object_event: ")
    json.dumps(entry.as_dict())


def test_redrive_leaves_a_body_that_is_not_json_in_the_dlq_with_one_error_line(
    sqs: tuple[Any, Stubber],
) -> None:
    client, stubber = sqs
    stubber.add_response(
        "receive_message", {"Messages": [_message(n, b) for n, b in NOT_JSON.items()]}
    )
    stubber.add_response("receive_message", {"Messages": []})  # nothing deleted in between
    report = redrive_router_dlq(
        PipelineConfig(), sqs=client, dlq_url=ROUTER_DLQ_URL, queue_url=QUEUE_URL
    )
    assert (report.moved, report.failed, report.messages_sent) == (0, len(NOT_JSON), 0)
    assert len(report.errors) == len(NOT_JSON)
    for name, line in zip(NOT_JSON, report.errors, strict=True):
        assert line.startswith(f"message {name}: not an S3 event (not JSON (")
        assert line.endswith("left in the DLQ") and "\n" not in line and len(line) < 300


def test_redrive_of_an_event_with_only_unreadable_records_sends_nothing_and_deletes_it(
    sqs: tuple[Any, Stubber],
) -> None:
    # The router skipped those records too (and logged why): nothing is left to redo.
    client, stubber = sqs
    stubber.add_response(
        "receive_message", {"Messages": [_message("bad", UNREADABLE_RECORDS["key-list"])]}
    )
    stubber.add_response(
        "delete_message_batch",
        {"Successful": [{"Id": "0"}], "Failed": []},
        {"QueueUrl": ROUTER_DLQ_URL, "Entries": [{"Id": "0", "ReceiptHandle": "r-bad"}]},
    )
    stubber.add_response("receive_message", {"Messages": []})
    report = redrive_router_dlq(
        PipelineConfig(), sqs=client, dlq_url=ROUTER_DLQ_URL, queue_url=QUEUE_URL
    )
    assert (report.moved, report.failed, report.messages_sent) == (1, 0, 0)
    assert report.errors == [] and "not_object_event" in report.notes[0]
