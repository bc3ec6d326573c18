"""S3 latency and error rules, the rule constructor other tests build, and operation names."""

from __future__ import annotations

import pytest

from localcloud.services.calls import CallTimes, s3_operation, sqs_operation
from localcloud.services.faults import FaultRule, Faults


def test_an_s3_rule_delays_its_operation_and_object_only() -> None:
    faults = Faults()
    faults.add(FaultRule("s3", None, "GetObject", latency_seconds=0.02, match="photos/a.jpg"))
    assert faults.decide("s3", "GetObject", b"/src/photos/a.jpg").delay == pytest.approx(0.02)
    assert faults.decide("s3", "GetObject", b"/src/photos/b.jpg").delay == 0.0
    assert faults.decide("s3", "HeadObject", b"/src/photos/a.jpg").delay == 0.0
    assert faults.decide("s3vectors", "GetObject", b"/src/photos/a.jpg").delay == 0.0


def test_an_s3_error_rule_answers_in_s3s_xml_shape() -> None:
    faults = Faults()
    rule = faults.s3_error("GetObject", "AccessDenied", match="photos/a.jpg")
    error = faults.decide("s3", "GetObject", b"/src/photos/a.jpg").error
    assert error is not None and error.status == 403
    body = error.body().decode()
    assert "<Code>AccessDenied</Code>" in body and "<Message>Access Denied</Message>" in body
    assert ("Content-Type", "application/xml") in error.headers()
    assert faults.decide("s3", "HeadObject", b"/src/photos/a.jpg").error is None
    assert faults.decide("s3", "GetObject", b"/src/photos/b.jpg").error is None
    assert rule.fired == 1


def test_s3_errors_are_s3s_own_codes() -> None:
    slow = Faults().add_from_json({"service": "s3", "error": "SlowDown", "count": 1})
    assert slow.message == "Please reduce your request rate."
    with pytest.raises(ValueError, match="AccessDenied"):
        Faults().add_from_json({"service": "s3", "error": "ThrottlingException"})


def test_the_positional_constructor_still_builds_a_latency_rule() -> None:
    rule = FaultRule("bedrock", None, "InvokeModel", latency_seconds=3, match="red")
    assert (rule.service, rule.error, rule.operation, rule.match) == (
        "bedrock",
        None,
        "InvokeModel",
        "red",
    )
    assert Faults().add(rule).latency_seconds == 3


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "name"),
    [
        ("GET", "/src/photos/a.jpg", "", {}, "GetObject"),
        ("HEAD", "/src/photos/a.jpg", "", {}, "HeadObject"),
        ("PUT", "/src/photos/a.jpg", "", {}, "PutObject"),
        ("PUT", "/src/a.jpg", "", {"HTTP_X_AMZ_COPY_SOURCE": "/src/b.jpg"}, "CopyObject"),
        ("DELETE", "/src/a.jpg", "", {}, "DeleteObject"),
        ("GET", "/src/a.jpg", "tagging", {}, "ObjectGet"),
        ("GET", "/src", "list-type=2", {}, "BucketGet"),
    ],
)
def test_s3_requests_are_named_by_operation(
    method: str, path: str, query: str, headers: dict[str, str], name: str
) -> None:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, **headers}
    assert s3_operation(environ) == name


def test_sqs_requests_are_named_in_either_protocol() -> None:
    assert sqs_operation({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, b"{}") == (
        "ReceiveMessage"
    )
    assert sqs_operation({}, b"Action=SendMessageBatch&Version=2012-11-05") == "SendMessageBatch"


def test_call_times_since_a_snapshot() -> None:
    times = CallTimes()
    times.add("s3:GetObject", 0.004)
    before = times.snapshot()
    times.add("s3:GetObject", 0.002)
    times.add("s3:GetObject", 0.004)
    later = times.since(before)
    assert list(later) == ["s3:GetObject"]
    assert later["s3:GetObject"].calls == 2
    assert later["s3:GetObject"].ms_per_call == pytest.approx(3.0)
