"""The run loop against a scripted SQS: watermark under reordering, rejects, fatal errors;
plus the checkpoint stores, the filters and the estimate."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgsearch.config import load_config
from imgsearch.pricing import PRICES
from imgsearch.selection import KeySelection
from scripts.backfill.checkpoint import (
    Checkpoint,
    InputProgress,
    LocalCheckpointStore,
    open_store,
)
from scripts.backfill.errors import CheckpointError
from scripts.backfill.estimate import Workload, estimate
from scripts.backfill.filters import RowFilter, parse_size
from scripts.backfill.manifest import load_manifest
from scripts.backfill.progress import ProgressSnapshot, make_reporter
from scripts.backfill.rows import InventoryRow
from scripts.backfill.run import Backfill, Options
from scripts.backfill.sender import RetryPolicy
from scripts.backfill.sources import manifest_source
from scripts.common.console import format_duration
from tests.unit import backfill_support as bs
from tests.unit.backfill_support import aws_env

__all__ = ["aws_env"]

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed.fifo"


class ScriptedSqs:
    """SendMessageBatch answered by rules on the keys in the batch (the network edge)."""

    def __init__(
        self,
        *,
        hold: str | None = None,
        reject: frozenset[str] = frozenset(),
        deny_from_call: int | None = None,
    ) -> None:
        self.hold = hold
        self.release = threading.Event()
        self.reject = reject
        self.deny_from_call = deny_from_call
        self.accepted: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        keys = [json.loads(e["MessageBody"])["key"] for e in Entries]
        with self._lock:
            self.calls += 1
            call = self.calls
        if self.deny_from_call is not None and call >= self.deny_from_call:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "SendMessageBatch"
            )
        if self.hold in keys:
            self.release.wait(20)
        ok, failed = [], []
        for entry, key in zip(Entries, keys, strict=True):
            if key in self.reject:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "InvalidMessageContents",
                        "Message": "no",
                    }
                )
            else:
                ok.append({"Id": entry["Id"], "MessageId": "m", "MD5OfMessageBody": "x"})
                with self._lock:
                    self.accepted.append(key)
        return {"Successful": ok, "Failed": failed}


def _backfill(tmp_path: Path, objs: list[bs.Obj], sqs: ScriptedSqs, **opts: Any) -> Backfill:
    cfg = load_config()
    manifest = load_manifest(bs.report(objs, parts=2).write_to(tmp_path / "inv"), lambda: None)
    source = manifest_source(manifest, lambda: None)
    row_filter = RowFilter(KeySelection.from_config(cfg))
    checkpoint = Checkpoint(source.run_id, source.description, row_filter.identity())
    store = LocalCheckpointStore(tmp_path / "cp.json")
    options = Options(rejects=tmp_path / "rejects.jsonl", **opts)
    return Backfill(cfg, source, row_filter, checkpoint, store, options, sqs=sqs, queue_url=URL)


def _saved_rows(tmp_path: Path) -> int:
    path = tmp_path / "cp.json"
    if not path.exists():
        return 0
    return sum(p["rows"] for p in json.loads(path.read_text())["inputs"].values())


def test_checkpoint_never_passes_a_batch_still_in_flight(tmp_path: Path) -> None:
    objs = bs.images(100)
    sqs = ScriptedSqs(hold=objs[10].key)  # the second batch hangs; later ones succeed
    run = _backfill(tmp_path, objs, sqs, concurrency=4, max_in_flight=6)
    worker = threading.Thread(target=run.run)
    worker.start()
    deadline = time.monotonic() + 20
    while run.stats.sent < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.stats.sent >= 50  # batches 3.. are acknowledged ...
    assert _saved_rows(tmp_path) == 10  # ... but the checkpoint stops before the held one
    sqs.release.set()
    worker.join(20)
    assert run.summary()["status"] == "complete"
    saved = json.loads((tmp_path / "cp.json").read_text())
    assert saved["complete"] and _saved_rows(tmp_path) == 100
    assert sorted(sqs.accepted) == sorted(o.key for o in objs)


def test_rejected_entries_are_written_down_and_the_run_goes_on(tmp_path: Path) -> None:
    objs = bs.images(25)
    bad = {objs[3].key, objs[17].key}
    run = _backfill(tmp_path, objs, ScriptedSqs(reject=frozenset(bad)), concurrency=2)
    run.run()
    summary = run.summary()
    assert (summary["sent"], summary["rejected"], summary["status"]) == (23, 2, "complete")
    lines = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {x["message_body"]["key"] for x in lines} == bad
    assert all(x["code"] == "InvalidMessageContents" for x in lines)
    assert json.loads((tmp_path / "cp.json").read_text())["rejected"] == 2


def test_fatal_sqs_error_keeps_the_acknowledged_watermark(tmp_path: Path) -> None:
    objs = bs.images(60)
    sqs = ScriptedSqs(deny_from_call=4)
    run = _backfill(tmp_path, objs, sqs, concurrency=1, max_in_flight=1, retry=RetryPolicy(3))
    run.run()
    summary = run.summary()
    assert summary["status"] == "failed" and "AccessDenied" in summary["error"]
    assert summary["sent"] == 30 and _saved_rows(tmp_path) == 30
    assert not json.loads((tmp_path / "cp.json").read_text())["complete"]


# --------------------------------------------------------------------------- checkpoint stores


def test_local_store_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path / "sub" / "cp.json")
    assert store.load() is None
    cp = Checkpoint("manifest:abc", "s3://x/manifest.json", {"bucket": "b"})
    cp.inputs["data/1.csv.gz"] = InputProgress(rows=40, after_key="k/ü.jpg")
    store.save(cp, durable=True)
    store.save(cp)
    assert list((tmp_path / "sub").iterdir()) == [tmp_path / "sub" / "cp.json"]  # no temp left
    loaded = store.load()
    assert loaded == cp


def test_unreadable_checkpoint_says_restart(tmp_path: Path) -> None:
    (tmp_path / "cp.json").write_text("{half")
    with pytest.raises(CheckpointError, match="--restart"):
        LocalCheckpointStore(tmp_path / "cp.json").load()


def test_s3_checkpoint_store(aws_env: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=bs.REGION)
        s3.create_bucket(Bucket="ops")
        store = open_store("s3://ops/backfill/cp.json", lambda: s3)
        assert store.load() is None
        cp = Checkpoint("listing:s3://photos/", "listing", {}, sent=7)
        store.save(cp)
        assert store.load() == cp
        with pytest.raises(CheckpointError, match="name an object"):
            open_store("s3://ops/", lambda: s3)


def test_s3_checkpoint_in_a_missing_bucket_is_an_error_not_a_fresh_start(aws_env: Path) -> None:
    """S3 answers 404 for a missing bucket too; taking it as "no checkpoint yet" would
    start over and fail only at the first save, after sending."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=bs.REGION)
        store = open_store("s3://no-such-ops-bucket/cp.json", lambda: s3)
        with pytest.raises(CheckpointError, match="NoSuchBucket"):
            store.load()


def test_checkpoint_belongs_to_one_input_and_filter_set() -> None:
    cp = Checkpoint("manifest:a", "s3://x", {"min_size": None})
    cp.check_belongs("manifest:a", {"min_size": None}, "cp.json")
    with pytest.raises(CheckpointError, match="another input"):
        cp.check_belongs("manifest:b", {"min_size": None}, "cp.json")
    with pytest.raises(CheckpointError, match=r"other filters \(min_size\)"):
        cp.check_belongs("manifest:a", {"min_size": 5}, "cp.json")


# --------------------------------------------------------------------------- filters


def _row(key: str, **kw: Any) -> InventoryRow:
    base: dict[str, Any] = dict(
        size=100, etag="e", version_id=None, is_latest=True, is_delete_marker=False,
        last_modified="2024-03-01T00:00:00.000Z",
    )  # fmt: skip
    base.update(kw)
    return InventoryRow(key, **base)


def test_filter_reasons_in_order() -> None:
    f = RowFilter(KeySelection(("a/",), (".jpg",)), min_size=10, max_size=1000)
    assert f.reason(_row("a/x.JPG")) is None
    assert f.reason(_row("a/x.jpg", is_delete_marker=True)) == "delete_marker"
    assert f.reason(_row("a/x.jpg", is_latest=False)) == "not_latest"
    assert f.reason(_row("b/x.jpg")) == "prefix"
    assert f.reason(_row("a/x.png")) == "suffix"
    assert f.reason(_row("a/x.jpg", size=5)) == "too_small"
    assert f.reason(_row("a/x.jpg", size=5000)) == "too_large"


def test_sizes_parse_with_units() -> None:
    assert [parse_size(s) for s in ("10", "1K", "5MiB", "2g", "1.5kb")] == [
        10,
        1024,
        5 * 1024**2,
        2 * 1024**3,
        1536,
    ]


# --------------------------------------------------------------------------- estimate


def test_estimate_follows_the_config_and_prices() -> None:
    cfg = load_config().replace(embedder_concurrency=5, batch_size=1, dimension=1024)
    one = estimate(Workload(1000, key_bytes=30_000), cfg, latency_s=0.5)
    assert one.parallel_embeddings == 5
    assert one.duration_s == pytest.approx(1000 * 0.5 / 5)
    assert one.costs["bedrock"] == pytest.approx(1000 * PRICES.bedrock_nova_image_embedding)
    # one PutVectors per image, each billed the 128 KiB minimum
    assert one.costs["s3vectors_put"] == pytest.approx(
        1000 * PRICES.s3vectors_put_min_billed_bytes / 1024**3 * PRICES.s3vectors_put_per_gb
    )
    assert one.costs["lambda"] == pytest.approx(
        1000 * 0.5 * 0.5 * PRICES.lambda_gb_second_arm64
        + 1000 / 1e6 * PRICES.lambda_per_million_requests
    )
    assert one.costs["sqs"] == pytest.approx(
        (100 + 2000) / 1e6 * PRICES.sqs_fifo_per_million_requests
    )
    # linear in the number of images; storage grows with the dimension
    ten = estimate(Workload(10_000, key_bytes=300_000), cfg, latency_s=0.5)
    assert ten.total_cost == pytest.approx(10 * one.total_cost)
    big = estimate(Workload(1000, key_bytes=30_000), cfg.replace(dimension=3072), latency_s=0.5)
    assert big.costs["s3vectors_storage_per_month"] > 2.5 * one.costs["s3vectors_storage_per_month"]
    x86 = estimate(Workload(1000), cfg.replace(architecture="x86_64"), latency_s=0.5)
    assert x86.costs["lambda"] > one.costs["lambda"]


def test_estimate_parallelism_is_capped_by_message_groups_and_batching() -> None:
    cfg = load_config().replace(
        embedder_concurrency=50, message_groups=8, batch_size=4, embed_pool_size=2
    )
    est = estimate(Workload(800), cfg, latency_s=1.0)
    assert est.parallel_embeddings == 8 * 2
    assert est.duration_s == pytest.approx(800 / 16)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 65, 3700, 93784)] == [
        "5s",
        "1m 5s",
        "1h 1m",
        "1d 2h 3m",
    ]


# --------------------------------------------------------------------------- progress


def test_snapshot_rate_and_eta_use_this_runs_progress() -> None:
    snap = ProgressSnapshot(rows=500, sent=400, fraction=0.6, start_fraction=0.2, elapsed=20.0)
    assert snap.rate == 20.0
    assert snap.eta == pytest.approx(20.0)  # 0.4 done in 20 s, 0.4 left
    assert ProgressSnapshot(fraction=None, elapsed=5).eta is None  # a listing: total unknown
    line = ProgressSnapshot(
        rows=12_345, sent=12_000, skipped={"suffix": 300, "prefix": 45}
    ).describe()
    assert (
        "rows 12.3k" in line
        and "sent 12.0k" in line
        and "skipped 345 (suffix 300, prefix 45)" in line
    )


def test_log_reporter_writes_plain_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    reporter = make_reporter("log", stream, interval=0.0)
    reporter.update(ProgressSnapshot(rows=10, sent=10, fraction=0.5, elapsed=1.0))
    reporter.close(ProgressSnapshot(rows=20, sent=20, fraction=1.0, elapsed=2.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("backfill:  50.0% sent 10 · rows 10")
    assert "\x1b[" not in stream.getvalue()  # no escape codes in a log


def test_bar_reporter_draws_on_a_terminal() -> None:
    stream = io.StringIO()
    reporter = make_reporter("bar", stream)
    reporter.update(ProgressSnapshot(rows=10, sent=10, fraction=0.25, elapsed=1.0))
    reporter.close(ProgressSnapshot(rows=40, sent=40, fraction=1.0, elapsed=2.0))
    drawn = stream.getvalue()
    assert "100%" in drawn and "sent 40" in drawn and "ETA 0s" in drawn
