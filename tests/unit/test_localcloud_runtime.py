"""The local Lambda runtime: event source mapping semantics, S3 events, timeouts, EMF.

Uses small handlers of its own (``tests/unit/localcloud_lambdas.py``) so that what is
tested is the runtime, not the pipeline: the pipeline's end-to-end tests are in
``tests/e2e``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from imgsearch.config import ConfigError, load_config
from localcloud.cloud import LocalCloud
from localcloud.lambdas.event_source import successes
from localcloud.lambdas.pool import InvocationResult
from localcloud.telemetry.emf import parse_emf

LAMBDAS = "tests.unit.localcloud_lambdas"


CONFIG: dict[str, Any] = {
    # 6 x the function timeout, as AWS asks of an SQS event source.
    "visibility_timeout_seconds": 12,
    "embedder_timeout_seconds": 2,
    "max_receive_count": 2,
    "embedder_concurrency": 3,
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    cfg = load_config(overrides=CONFIG)
    with LocalCloud.start(
        cfg,
        router_handler=f"{LAMBDAS}.s3_router",
        embedder_handler=f"{LAMBDAS}.sqs_worker",
    ) as running:
        yield running


def _send(cloud: LocalCloud, group: str, **body: Any) -> None:
    cloud.client("sqs").send_message(
        QueueUrl=cloud.resources.queue_url,
        MessageBody=json.dumps(body),
        MessageGroupId=group,
        MessageDeduplicationId=f"{body['id']}-{time.time_ns()}",
    )


def _fake(cloud: LocalCloud, function: str, at: str) -> list[dict[str, Any]]:
    return [r for r in cloud.logs.records(function) if r.get("fake") and r.get("at") == at]


def _starts(cloud: LocalCloud, ident: str) -> list[dict[str, Any]]:
    return [r for r in _fake(cloud, cloud.resources.embedder_function, "start") if r["id"] == ident]


def _dlq_bodies(cloud: LocalCloud, queue: str) -> list[str]:
    return [m["body"] for m in cloud.dlq_messages() if m["queue"] == queue]


# --------------------------------------------------------------------------- pure


def _batch(*ids: str) -> list[dict[str, Any]]:
    return [{"MessageId": i, "ReceiptHandle": f"rh-{i}"} for i in ids]


@pytest.mark.parametrize(
    ("result", "deleted"),
    [
        (InvocationResult(ok=True, payload=None), ["a", "b"]),
        (InvocationResult(ok=True, payload={}), ["a", "b"]),
        (InvocationResult(ok=True, payload={"batchItemFailures": []}), ["a", "b"]),
        (InvocationResult(ok=True, payload={"batchItemFailures": None}), ["a", "b"]),
        (
            InvocationResult(ok=True, payload={"batchItemFailures": [{"itemIdentifier": "b"}]}),
            ["a"],
        ),
        (InvocationResult(ok=False, error={"errorType": "X"}), None),
        (InvocationResult(ok=True, payload={"batchItemFailures": [{"itemIdentifier": ""}]}), None),
        (
            InvocationResult(ok=True, payload={"batchItemFailures": [{"itemIdentifier": "zz"}]}),
            None,
        ),
        (InvocationResult(ok=True, payload={"batchItemFailures": [{"id": "a"}]}), None),
        (InvocationResult(ok=True, payload="not an object"), None),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(
    result: InvocationResult, deleted: list[str] | None
) -> None:
    done = successes(_batch("a", "b"), result)
    assert (None if done is None else [m["MessageId"] for m in done]) == deleted


def test_emf_records_become_metric_values() -> None:
    record = {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": "NS",
                    "Dimensions": [["service", "reason"]],
                    "Metrics": [{"Name": "Failures", "Unit": "Count"}],
                }
            ]
        },
        "service": "svc",
        "reason": "truncated",
        "Failures": [1.0, 1.0],
    }
    [(key, values)] = parse_emf(record)
    assert (key.namespace, key.name, key.unit) == ("NS", "Failures", "Count")
    assert key.dimensions == (("service", "svc"), ("reason", "truncated"))
    assert values == [1.0, 1.0]
    assert parse_emf({"message": "not a metric"}) == []


# --------------------------------------------------------------------------- live


def test_failed_messages_are_redelivered_then_dead_lettered(cloud: LocalCloud) -> None:
    _send(cloud, "p1", id="ok-1")
    _send(cloud, "p2", id="bad-1", fail=True)
    _send(cloud, "p3", id="ok-2")
    cloud.wait_idle(60)
    assert [r["receive"] for r in _starts(cloud, "ok-1")] == [1]
    assert [r["receive"] for r in _starts(cloud, "ok-2")] == [1]
    # maxReceiveCount is 2: delivered twice, then moved to the DLQ, never lost.
    assert [r["receive"] for r in _starts(cloud, "bad-1")] == [1, 2]
    dead = [json.loads(b)["id"] for b in _dlq_bodies(cloud, cloud.resources.dlq_url)]
    assert "bad-1" in dead and "ok-1" not in dead
    assert cloud.event_source is not None
    assert cloud.event_source.stats["group_conflicts"] == 0


def test_a_timed_out_invocation_loses_its_environment(cloud: LocalCloud) -> None:
    assert cloud.embedder is not None
    timeouts = cloud.embedder.stats["timeouts"]
    _send(cloud, "t1", id="slow-1", sleep=30)
    cloud.wait_idle(60)
    starts = _starts(cloud, "slow-1")
    assert [r["receive"] for r in starts] == [1, 2]
    assert all(r["remaining_ms"] <= 2000 for r in starts)
    assert cloud.embedder.stats["timeouts"] == timeouts + 2
    for pid in {r["pid"] for r in starts}:  # each timed-out environment was killed
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert any(json.loads(b)["id"] == "slow-1" for b in _dlq_bodies(cloud, cloud.resources.dlq_url))
    _send(cloud, "t2", id="after-timeout")  # the function still runs afterwards
    cloud.wait_idle(30)
    assert [r["receive"] for r in _starts(cloud, "after-timeout")] == [1]


def _events(cloud: LocalCloud, ids: set[str]) -> list[tuple[str, str]]:
    """("start" | "end", id) of the given messages' invocations, in the order they happened.

    The handlers stamp each event with the one clock all local processes share; only the
    order is used, never a duration, so a slow machine cannot change the outcome.
    """
    records = [
        r
        for at in ("start", "end")
        for r in _fake(cloud, cloud.resources.embedder_function, at)
        if r["id"] in ids
    ]
    return [(r["at"], r["id"]) for r in sorted(records, key=lambda r: (r["t"], r["at"] == "start"))]


def _peak(events: list[tuple[str, str]]) -> int:
    """The most invocations running at once, from the order of their start and end events."""
    running, peak = 0, 0
    for at, _ in events:
        running += 1 if at == "start" else -1
        peak = max(peak, running)
    return peak


def test_one_batch_per_group_in_order_and_groups_in_parallel(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    serial = [f"s{i}" for i in range(5)]
    parallel = [f"p{i}" for i in range(6)]
    for ident in serial:
        _send(cloud, "serial", id=ident)
    for i, ident in enumerate(parallel):
        # Each waits (within its timeout) until a second one has started: if the runtime
        # runs groups side by side, they overlap however slow the machine is.
        _send(cloud, f"par{i}", id=ident, meet=str(tmp_path), peers=2)
    cloud.wait_idle(60)
    serial_events = _events(cloud, set(serial))
    assert [i for at, i in serial_events if at == "start"] == serial  # FIFO within the group
    assert _peak(serial_events) == 1  # never two of the group at once
    assert 2 <= _peak(_events(cloud, set(parallel))) <= 3  # side by side, up to concurrency 3


def test_s3_events_reach_the_router_like_s3_sends_them(cloud: LocalCloud) -> None:
    s3 = cloud.client("s3")
    bucket = cloud.resources.source_bucket
    s3.put_object(Bucket=bucket, Key="photos/a b+c.jpg", Body=b"x")
    s3.put_object(Bucket=bucket, Key="notes/readme.txt", Body=b"x")  # no suffix filter matches
    s3.delete_object(Bucket=bucket, Key="photos/a b+c.jpg")
    cloud.wait_idle(30)
    records = [
        rec
        for r in _fake(cloud, cloud.resources.router_function, "s3")
        for rec in r["event"]["Records"]
        if "a+b" in rec["s3"]["object"]["key"] or "readme" in rec["s3"]["object"]["key"]
    ]
    assert [r["eventName"] for r in records] == ["ObjectCreated:Put", "ObjectRemoved:Delete"]
    created, removed = (r["s3"]["object"] for r in records)
    assert created["key"] == "photos/a+b%2Bc.jpg"  # URL-encoded, spaces as '+'
    assert created["size"] == 1 and created["eTag"]
    assert "size" not in removed and "eTag" not in removed
    assert int(removed["sequencer"], 16) > int(created["sequencer"], 16)


def test_router_events_that_keep_failing_go_to_the_router_dlq(cloud: LocalCloud) -> None:
    cloud.client("s3").put_object(
        Bucket=cloud.resources.source_bucket, Key="photos/router-fail.jpg", Body=b"x"
    )
    cloud.wait_idle(30)
    tries = [
        r
        for r in _fake(cloud, cloud.resources.router_function, "s3")
        if "router-fail" in json.dumps(r["event"])
    ]
    assert len(tries) == 3  # the first attempt and Lambda's two async retries
    dead = _dlq_bodies(cloud, cloud.resources.router_dlq_url)
    assert any("router-fail" in body for body in dead)


def test_emf_lines_become_cloudwatch_metrics(cloud: LocalCloud) -> None:
    _send(cloud, "m1", id="metric-1", emf=True)
    cloud.wait_idle(30)
    now = datetime.now(UTC)
    stats = cloud.client("cloudwatch").get_metric_statistics(
        Namespace="LocalCloudTest",
        MetricName="FakeMetric",
        Dimensions=[{"Name": "service", "Value": "fake"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 5.0
    assert sum(p["SampleCount"] for p in stats["Datapoints"]) == 2.0


def _http(
    cloud: LocalCloud, method: str, path: str, body: Any = None, *, marked: bool = True
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-Localcloud": "1"} if marked else {}
    req = urllib.request.Request(
        f"{cloud.endpoint}{path}", data=data, method=method, headers=headers
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_control_writes_need_the_localcloud_header(cloud: LocalCloud) -> None:
    """A web page cannot set this header cross-site without a preflight, so no CSRF."""
    throttle = {"service": "bedrock", "error": "ThrottlingException", "count": 1}
    for method, path, body in (
        ("POST", "/_localcloud/faults", throttle),
        ("DELETE", "/_localcloud/faults", None),
        ("DELETE", "/_localcloud/faults/0", None),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _http(cloud, method, path, body, marked=False)
        assert refused.value.code == 403, (method, path)
        assert "X-Localcloud: 1" in json.loads(refused.value.read())["message"]
    assert _http(cloud, "GET", "/_localcloud/faults", marked=False) == {"faults": []}
    assert _http(cloud, "GET", "/_localcloud/health", marked=False) == {"ok": True}


def test_faults_and_status_over_http(cloud: LocalCloud) -> None:
    added = _http(
        cloud,
        "POST",
        "/_localcloud/faults",
        {"service": "bedrock", "error": "ThrottlingException", "count": 1},
    )
    assert added["fault"]["count"] == 1
    assert [f["error"] for f in _http(cloud, "GET", "/_localcloud/faults")["faults"]] == [
        "ThrottlingException"
    ]
    status = _http(cloud, "GET", "/_localcloud/status")
    assert status["resources"]["queue_url"] == cloud.resources.queue_url
    assert _http(cloud, "DELETE", "/_localcloud/faults") == {"faults": []}


def test_sqs_through_the_single_endpoint(cloud: LocalCloud) -> None:
    via_front = cloud._new_client("sqs", cloud.endpoint)
    urls = via_front.list_queues()["QueueUrls"]
    assert cloud.resources.queue_url in urls and cloud.resources.dlq_url in urls


def test_the_local_cloud_refuses_what_the_stack_refuses() -> None:
    """One validator: a visibility timeout under 6 x the embedder timeout fails at load."""
    with pytest.raises(ConfigError, match="6 x") as refused:
        load_config(overrides={"visibility_timeout_seconds": 11, "embedder_timeout_seconds": 2})
    assert "'visibility_timeout_seconds'" in str(refused.value)
    assert "'embedder_timeout_seconds'" in str(refused.value)


def test_the_event_source_receives_only_what_can_start_at_once(cloud: LocalCloud) -> None:
    """A batch received ahead would wait while its visibility clock runs; none is."""
    assert cloud.event_source is not None
    for i in range(9):
        _send(cloud, f"ahead{i}", id=f"ahead-{i}", sleep=0.3)
    cloud.wait_idle(60)
    assert 1 <= cloud.event_source.stats["peak_in_flight"] <= cloud.cfg.embedder_concurrency


@pytest.mark.parametrize("how", ["change_visibility", "timeout"])
def test_a_returned_fifo_batch_keeps_its_order(cloud: LocalCloud, how: str) -> None:
    """Messages of one group that are visible again together come back in their order."""
    sqs = cloud.client("sqs")
    url = sqs.create_queue(
        QueueName=f"order-{how}.fifo",
        Attributes={"FifoQueue": "true", "VisibilityTimeout": "1"},
    )["QueueUrl"]
    for i in range(4):
        sqs.send_message(
            QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"{i}"
        )

    def receive(wait: int = 2) -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        return [dict(m) for m in got.get("Messages", [])]

    first = receive()
    assert [m["Body"] for m in first] == ["m0", "m1", "m2", "m3"]
    assert receive(wait=0) == []  # the group is locked while its messages are in flight
    if how == "change_visibility":
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(first)
            ],
        )
    else:
        time.sleep(1.5)
    assert [m["Body"] for m in receive()] == ["m0", "m1", "m2", "m3"]
    sqs.delete_queue(QueueUrl=url)


def test_a_group_handed_out_twice_at_once_is_an_accounting_violation(cloud: LocalCloud) -> None:
    """Runs last: it breaks the queue's visibility rule on purpose to see it reported."""
    sqs, url = cloud.client("sqs"), cloud.resources.queue_url
    assert cloud.accounting().ok
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    try:
        _send(cloud, "twice", id="twice-1", sleep=1.5)
        cloud.wait_idle(60)
    finally:
        sqs.set_queue_attributes(
            QueueUrl=url,
            Attributes={"VisibilityTimeout": str(cloud.cfg.visibility_timeout_seconds)},
        )
    violations = cloud.accounting().violations
    assert any("message group twice" in v for v in violations), violations
