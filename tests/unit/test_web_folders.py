"""The folder picker's S3 listing and the recent failures from the log (Stubber edge)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from scripts.ops.failure_log import recent_failures
from scripts.web.folders import list_folders


def client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def prefixes(*names: str) -> list[dict[str, str]]:
    return [{"Prefix": n} for n in names]


def test_folders_page_through_and_cap_with_truncated() -> None:
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {
                "CommonPrefixes": prefixes("trips/a/", "trips/b/"),
                "IsTruncated": True,
                "NextContinuationToken": "t1",
            },
            {"Bucket": "photos", "Prefix": "trips/", "Delimiter": "/", "MaxKeys": 4},
        )
        stub.add_response(
            "list_objects_v2",
            {"CommonPrefixes": prefixes("trips/c/", "trips/d/"), "IsTruncated": False},
            {
                "Bucket": "photos",
                "Prefix": "trips/",
                "Delimiter": "/",
                "MaxKeys": 2,
                "ContinuationToken": "t1",
            },
        )
        listing = list_folders(s3, "photos", "/trips", limit=3)
    assert listing.as_dict() == {
        "under": "trips/",
        "folders": ["trips/a/", "trips/b/", "trips/c/"],
        "truncated": True,
    }


def test_folders_of_the_root_untruncated() -> None:
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {"CommonPrefixes": prefixes("a/"), "IsTruncated": False},
            {"Bucket": "photos", "Prefix": "", "Delimiter": "/", "MaxKeys": ANY},
        )
        listing = list_folders(s3, "photos", "")
    assert listing.folders == ["a/"] and listing.truncated is False


def line(outcome: str, key: str, reason: str) -> str:
    record = {
        "outcome": outcome,
        "vector_key": f"v-{key}",
        "bucket": "b",
        "key": key,
        "reason": reason,
        "detail": f"{reason} detail",
    }
    return "INFO " + json.dumps(record)


def test_failure_log_keeps_the_last_line_per_object_newest_first() -> None:
    logs = client("logs")
    events = [
        {"timestamp": 1_000, "message": line("permanent_failure", "a.jpg", "corrupt")},
        {"timestamp": 2_000, "message": line("permanent_failure", "b.jpg", "too_large")},
        {"timestamp": 3_000, "message": line("permanent_failure", "a.jpg", "unsupported")},
        {"timestamp": 4_000, "message": "not json at all"},
        {"timestamp": 5_000, "message": line("embedded", "c.jpg", "")},  # the pattern's noise
    ]
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": events[:2], "nextToken": "n"}, ANY_ARGS)
        stub.add_response(
            "filter_log_events", {"events": events[2:]}, {**ANY_ARGS, "nextToken": "n"}
        )
        found, truncated = recent_failures(
            logs, "/aws/lambda/embedder", limit=10, lookback_days=7, note=print
        )
    assert truncated is False
    assert [(f["uri"], f["reason"], f["where"]) for f in found] == [
        ("s3://b/a.jpg", "unsupported", "failure log"),
        ("s3://b/b.jpg", "too_large", "failure log"),
    ]
    assert found[0]["at"] == "1970-01-01T00:00:03Z"


def test_unreadable_logs_are_a_note_not_an_error() -> None:
    logs = client("logs")
    notes: list[str] = []
    with Stubber(logs) as stub:
        stub.add_client_error("filter_log_events", "ResourceNotFoundException", "no group")
        assert recent_failures(
            logs, "/aws/lambda/gone", limit=10, lookback_days=7, note=notes.append
        ) == ([], False)
    assert "/aws/lambda/gone" in notes[0]


ANY_ARGS = {"logGroupName": ANY, "filterPattern": '"permanent_failure"', "startTime": ANY}
