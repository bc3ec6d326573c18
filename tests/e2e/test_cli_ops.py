"""``delete``, ``verify``, ``status`` and ``dlq`` on the local cloud, ending in the invariant."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from imgsearch.config import load_config
from imgsearch.enqueue import send_messages
from imgsearch.images import ImageInfo
from imgsearch.messages import for_backfill, vector_key
from imgsearch.vectors import VectorIndex, VectorRecord, build_metadata
from localcloud.cloud import LocalCloud
from tests.e2e.cli_harness import photo_jpeg, run_cli
from tests.e2e.conftest import E2E_CONFIG, assert_accounted, upload

pytestmark = pytest.mark.e2e

Capsys = pytest.CaptureFixture[str]


def _vectors(cloud: LocalCloud) -> VectorIndex:
    cfg = cloud.cfg
    return VectorIndex(cloud.client("s3vectors"), cfg.vector_bucket_name, cfg.index_name)


def _put_stray_vector(cloud: LocalCloud, key: str) -> str:
    """A vector for ``key`` written behind the pipeline's back (as an old bug might have)."""
    bucket = cloud.resources.source_bucket
    vkey = vector_key(bucket, key)
    metadata = build_metadata(
        bucket=bucket,
        key=key,
        image=ImageInfo("jpeg", 10, 10),
        size=100,
        etag="0" * 32,
        model_id=cloud.cfg.model_id,
        ingested_at="2024-01-01T00:00:00.000Z",
    )
    data = [1.0] + [0.0] * (cloud.cfg.dimension - 1)
    _vectors(cloud).put([VectorRecord(vkey, data, metadata)])
    return vkey


def _json(out: str) -> Any:
    return json.loads(out)


def test_delete_one_vector_then_verify_fix_restores_it(cloud: LocalCloud, capsys: Capsys) -> None:
    bucket = cloud.resources.source_bucket
    for name in ("coffee", "rocket", "astronaut"):
        upload(cloud, f"photos/{name}.jpg", photo_jpeg(name, 96))
    assert_accounted(cloud)
    uri = f"s3://{bucket}/photos/rocket.jpg"

    run = run_cli(cloud, capsys, "delete", uri)
    assert run.code == 0 and run.out.strip() == f"deleted the vector of {uri}"
    assert "the object still exists" in run.err
    assert vector_key(bucket, "photos/rocket.jpg") not in cloud.vector_keys()
    again = run_cli(cloud, capsys, "delete", uri, "--output", "json")
    assert again.code == 0 and _json(again.out)["deleted"] is False  # idempotent

    found = run_cli(cloud, capsys, "verify", "--all", "--output", "json")
    assert found.code == 1  # something is wrong, nothing was fixed
    report = _json(found.out)
    assert report["counts"] == {
        "missing": 1,
        "outdated": 0,
        "orphan": 0,
        "unselected": 0,
        "failed": 0,
    }
    assert report["findings"][0]["uri"] == uri
    assert (report["objects_checked"], report["vectors_checked"]) == (3, 2)
    # The object was uploaded a moment ago, so its missing vector may still be queued.
    assert "1 missing or outdated vector(s) belong to objects changed in the last" in found.err

    fixed = run_cli(cloud, capsys, "verify", "--all", "--fix")
    assert fixed.code == 0, fixed.err
    assert "enqueued 1 repair message(s)" in fixed.out
    cloud.wait_idle(60)
    assert run_cli(cloud, capsys, "get", uri).code == 0
    clean = run_cli(cloud, capsys, "verify", "--sample", "10")
    assert clean.code == 0
    assert "missing: 0, outdated: 0, orphan: 0, unselected: 0, failed: 0" in clean.out
    assert_accounted(cloud)


def test_verify_finds_orphans_and_unselected_vectors(cloud: LocalCloud, capsys: Capsys) -> None:
    bucket = cloud.resources.source_bucket
    upload(cloud, "photos/coffee.jpg", photo_jpeg("coffee", 96))
    upload(cloud, "notes/readme.txt", b"not an image, not selected")
    cloud.wait_idle(60)
    ghost = _put_stray_vector(cloud, "photos/ghost.jpg")
    stray = _put_stray_vector(cloud, "notes/readme.txt")

    for scope in (["--all"], ["--sample", "50"]):
        run = run_cli(cloud, capsys, "verify", *scope, "--output", "json")
        assert run.code == 1, run.err
        findings = {f["vector_key"]: f["kind"] for f in _json(run.out)["findings"]}
        assert findings == {ghost: "orphan", stray: "unselected"}, scope

    fixed = run_cli(cloud, capsys, "verify", "--all", "--fix")
    assert fixed.code == 0 and "enqueued 1 repair message(s)" in fixed.out
    assert "1 unselected vector(s) not fixed" in fixed.err
    cloud.wait_idle(60)
    assert ghost not in cloud.vector_keys()  # the embedder saw the object is gone
    assert stray in cloud.vector_keys()  # an existing object's vector is never auto-deleted
    run = run_cli(cloud, capsys, "delete", f"s3://{bucket}/notes/readme.txt")
    assert run.code == 0 and stray not in cloud.vector_keys()
    assert_accounted(cloud)


def test_verify_tells_recorded_permanent_failures_from_missing_vectors(
    cloud: LocalCloud, capsys: Capsys
) -> None:
    bucket = cloud.resources.source_bucket
    upload(cloud, "photos/coffee.jpg", photo_jpeg("coffee", 96))
    upload(cloud, "photos/broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    report = assert_accounted(cloud)
    assert report.vectors == 1
    broken = f"s3://{bucket}/photos/broken.jpg"

    run = run_cli(cloud, capsys, "verify", "--all", "--output", "json")
    assert run.code == 0, run.err  # a recorded failure is accounted for, not drift
    found = _json(run.out)
    assert found["counts"]["failed"] == 1 and found["counts"]["missing"] == 0
    assert found["findings"][0]["uri"] == broken
    assert found["findings"][0]["detail"].startswith("permanent failure: ")
    # Changed a moment ago, yet nothing is queued: a recorded failure is final.
    assert "may still be in the queue" not in run.err

    fixed = run_cli(cloud, capsys, "verify", "--all", "--fix")
    assert fixed.code == 0 and "enqueued 0 repair message(s)" in fixed.out
    retried = run_cli(cloud, capsys, "verify", "--all", "--fix", "--retry-failed")
    assert retried.code == 0 and "enqueued 1 repair message(s)" in retried.out
    cloud.wait_idle(60)
    assert run_cli(cloud, capsys, "verify", "--retry-failed").code == 2  # needs --fix
    assert_accounted(cloud)


def test_delete_prefix_asks_first_and_scans_the_index_on_request(
    cloud: LocalCloud, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = cloud.resources.source_bucket
    for key, name in (
        ("trip/a.jpg", "coffee"),
        ("trip/b.jpg", "rocket"),
        ("home/c.jpg", "astronaut"),
    ):
        upload(cloud, key, photo_jpeg(name, 96))
    cloud.wait_idle(60)
    ghost = _put_stray_vector(cloud, "trip/gone.jpg")
    before = cloud.vector_keys()

    # No terminal and no --yes: refuse, delete nothing.
    run = run_cli(cloud, capsys, "delete", "--prefix", f"s3://{bucket}/trip/")
    run.one_line_error("delete 2 vector(s)", "pass --yes")
    # A terminal that answers "n".
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    run = run_cli(cloud, capsys, "delete", "--prefix", f"s3://{bucket}/trip/")
    assert run.code == 1 and "cancelled" in run.err
    assert cloud.vector_keys() == before

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    run = run_cli(cloud, capsys, "delete", "--prefix", f"s3://{bucket}/trip/")
    assert run.code == 0 and "deleted 2 vector(s)" in run.out
    assert cloud.vector_keys() == before - {
        vector_key(bucket, "trip/a.jpg"),
        vector_key(bucket, "trip/b.jpg"),
    }
    # The listing cannot see the vector of an object already gone; --scan-index can.
    run = run_cli(cloud, capsys, "delete", "--prefix", f"s3://{bucket}/trip/", "--yes")
    assert run.code == 0 and "no vectors under" in run.out
    run = run_cli(
        cloud, capsys, "delete", "--prefix", f"s3://{bucket}/trip/", "--scan-index", "--yes",
        "--output", "json",
    )  # fmt: skip
    assert _json(run.out)["uris"] == [f"s3://{bucket}/trip/gone.jpg"]
    assert ghost not in cloud.vector_keys()

    s3 = cloud.client("s3")
    for key in ("trip/a.jpg", "trip/b.jpg"):
        s3.delete_object(Bucket=bucket, Key=key)
    for bad, fragment in (
        (["delete"], "give either"),
        (["delete", f"s3://{bucket}/trip/"], "name one object"),
        (["delete", "photos/a.jpg"], "expected s3://bucket/key"),
        (["delete", "--prefix", "s3://no-such-source-bucket/x/", "--yes"], "does not exist"),
    ):
        run_cli(cloud, capsys, *bad).one_line_error(fragment)
    assert_accounted(cloud)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_dlq_list_shows_why_and_redrive_recovers(
    make_cloud: Callable[..., LocalCloud], capsys: Capsys
) -> None:
    # One message group: the two failing objects queue behind each other, in order.
    cloud = make_cloud(max_receive_count=2, message_groups=1)
    bucket = cloud.resources.source_bucket
    rules = [
        cloud.faults.s3vectors_error(
            "PutVectors", "ServiceUnavailableException", match=vector_key(bucket, key)
        )
        for key in ("photos/doomed-1.jpg", "photos/doomed-2.jpg")
    ]
    upload(cloud, "photos/doomed-1.jpg", photo_jpeg("astronaut", 96))
    upload(cloud, "photos/doomed-2.jpg", photo_jpeg("rocket", 96))
    upload(cloud, "photos/fine.jpg", photo_jpeg("coffee", 96))
    report = assert_accounted(cloud)
    assert report.in_dlq == 2 and all(rule.fired for rule in rules)

    run = run_cli(cloud, capsys, "dlq", "list", "--output", "json")
    assert run.code == 0, run.err
    listing = _json(run.out)
    # Like SQS, one receive returns both messages of the one group, in order.
    assert listing["depth"] == 2 and listing["listed"] == 2
    entry, second = listing["messages"]
    assert entry["uri"] == f"s3://{bucket}/photos/doomed-1.jpg"
    assert second["uri"] == f"s3://{bucket}/photos/doomed-2.jpg"
    assert entry["kind"] == "upsert" and entry["receive_count"] >= 2
    assert entry["object_state"] == "exists" and entry["vector_state"] == "missing"
    assert entry["last_error"]["reason"] == "put_vectors_failed"
    assert "ServiceUnavailableException" in entry["why"]
    assert not any("wait behind" in n for n in listing["notes"])
    table = run_cli(cloud, capsys, "dlq", "list")
    assert "why            transient_failure: put_vectors_failed" in table.out
    assert cloud.snapshot().dlq == 2  # listing moved nothing

    cloud.faults.clear()
    run = run_cli(cloud, capsys, "dlq", "redrive")
    assert run.code == 0, run.err
    assert "moved 2 of 2 message(s)" in run.out
    assert "StartMessageMoveTask is not available here" in run.err
    cloud.wait_idle(60)
    keys = cloud.vector_keys()
    assert {vector_key(bucket, f"photos/doomed-{i}.jpg") for i in (1, 2)} <= keys
    empty = run_cli(cloud, capsys, "dlq", "redrive")
    assert empty.code == 0 and "nothing to redrive" in empty.out
    assert "is empty" in run_cli(cloud, capsys, "dlq", "list").out
    assert_accounted(cloud)


def test_status_reports_backlog_age_and_watch(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Services only, no Lambda: messages stay in the queue, so the backlog is exact.
    cfg = load_config(overrides=E2E_CONFIG)
    with LocalCloud.start(cfg, runtime=False) as cloud:
        bucket = cloud.resources.source_bucket
        messages = [
            for_backfill(bucket, f"photos/{i}.jpg", size=10, etag=f"e{i}") for i in range(4)
        ]
        sent = send_messages(
            cloud.client("sqs"), cloud.resources.queue_url, messages, groups=cfg.message_groups
        )
        assert sent.sent == 4
        assert cloud.queue_metrics is not None
        cloud.queue_metrics.publish()

        run = run_cli(cloud, capsys, "status", "--output", "json")
        assert run.code == 0, run.err
        status = _json(run.out)
        assert status["queue"]["visible"] == 4 and status["queue"]["total"] == 4
        assert status["dlq"]["total"] == 0
        assert status["oldest_message_age_seconds"] is not None
        assert status["oldest_message_age_source"].startswith("CloudWatch AWS/SQS")
        assert status["eta_seconds"] is None and "none finished" in status["eta_note"]
        assert status["last_hour"]["ImagesEmbedded"] == 0

        calls: list[float] = []

        def stop(seconds: float) -> None:
            calls.append(seconds)
            raise KeyboardInterrupt

        monkeypatch.setattr("scripts.imgsearch.commands.status.watch_sleep", stop)
        run = run_cli(cloud, capsys, "status", "--watch", "2")
        assert run.code == 0 and calls == [2.0]
        assert run.out.startswith("every 2s (Ctrl-C to stop)")
        assert "  waiting              4" in run.out
        run_cli(cloud, capsys, "status", "--watch", "0").one_line_error("--watch 0")
        run = run_cli(cloud, capsys, "status", "--queue-url", cloud.resources.queue_url + "-nope")
        assert run.code == 2 and "Traceback" not in run.err


_QUEUE_SETTINGS = (
    "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
    "VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds",
    "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds",
)  # fmt: skip


def test_router_dlq_list_and_redrive_through_the_enqueue_path(
    cloud: LocalCloud, capsys: Capsys
) -> None:
    """While the queue is gone the router fails; its DLQ keeps the events for a redrive."""
    sqs = cloud.client("sqs")
    bucket = cloud.resources.source_bucket
    queue_url, router_dlq = cloud.resources.queue_url, cloud.resources.router_dlq_url
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    sqs.delete_queue(QueueUrl=queue_url)
    upload(cloud, "photos/late-1.jpg", photo_jpeg("rocket", 96))
    upload(cloud, "photos/late-2.jpg", photo_jpeg("coffee", 96))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        depth = sqs.get_queue_attributes(
            QueueUrl=router_dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        if int(depth) == 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the router's failed events did not reach its DLQ")
    recreated = sqs.create_queue(
        QueueName=cloud.cfg.queue_name,
        Attributes={k: v for k, v in attributes.items() if k in _QUEUE_SETTINGS},
    )
    assert recreated["QueueUrl"] == queue_url

    run = run_cli(cloud, capsys, "dlq", "list", "--router", "--output", "json")
    assert run.code == 0, run.err
    listing = _json(run.out)
    assert listing["depth"] == 2 and listing["listed"] == 2
    objects = sorted(o for m in listing["messages"] for o in m["objects"])
    assert objects == [f"upsert s3://{bucket}/photos/late-{i}.jpg" for i in (1, 2)]
    assert all("SendMessageBatch" in m["why"] for m in listing["messages"]), listing
    table = run_cli(cloud, capsys, "dlq", "list", "--router")
    assert "2 event(s) in" in table.out and "photos/late-1.jpg" in table.out
    # The embedding queue's DLQ is another queue, and still empty.
    assert "is empty" in run_cli(cloud, capsys, "dlq", "list").out

    bad = run_cli(cloud, capsys, "dlq", "redrive", "--router", "--wait")
    bad.one_line_error("--rate and --wait are for SQS's move task")
    run = run_cli(cloud, capsys, "dlq", "redrive", "--router")
    assert run.code == 0, run.err
    assert "re-enqueued the objects of 2 of 2 event(s)" in run.out
    assert "(2 message(s) to the queue)" in run.out
    cloud.wait_idle(60)
    keys = cloud.vector_keys()
    assert {vector_key(bucket, f"photos/late-{i}.jpg") for i in (1, 2)} <= keys
    empty = run_cli(cloud, capsys, "dlq", "redrive", "--router")
    assert empty.code == 0 and "nothing to redrive" in empty.out
    assert "is empty" in run_cli(cloud, capsys, "dlq", "list", "--router").out
    assert_accounted(cloud)
