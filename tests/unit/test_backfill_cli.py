"""The backfill command end to end on moto S3 + SQS: messages, filters, dry run, errors."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import botocore.handlers
import pytest
from moto import mock_aws

from imgsearch.config import load_config
from imgsearch.messages import dedup_id, from_s3_record, group_id, parse_message, to_send_entry
from scripts.backfill.cli import main
from tests.unit import backfill_support as bs
from tests.unit.backfill_support import CLI_BASE, Obj, aws_env

__all__ = ["aws_env"]

MIXED = [
    Obj("2024/beach day.jpg", size=2048, etag="aaa"),
    Obj("2024/été/Ünïcødé+plus.PNG", size=4096, etag="bbb"),
    Obj("2024/scan%20name.webp", size=10, etag="ccc"),
    Obj("2024/notes.txt", size=5, etag="ddd"),
    Obj("2024/versioned.jpg", version_id="v2", etag="new", size=300),
    Obj("2024/versioned.jpg", version_id="v1", etag="old", is_latest=False, size=200),
    Obj("2024/removed.jpg", version_id="v9", is_delete_marker=True, size=None),
    Obj("folder/", size=0),
]
SENT = {
    "2024/beach day.jpg",
    "2024/été/Ünïcødé+plus.PNG",
    "2024/scan%20name.webp",
    "2024/versioned.jpg",
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    summary = json.loads(out) if out.strip() else {}
    return code, summary, err


def _event_record(obj: Obj) -> dict[str, Any]:
    """The S3 notification the router would get for ``obj`` (key URL-encoded, as S3 does)."""
    return {
        "eventName": "ObjectCreated:Put",
        "eventTime": "2024-05-01T00:00:00.000Z",
        "s3": {
            "bucket": {"name": bs.SOURCE},
            "object": {
                "key": quote_plus(obj.key, safe="/"),
                "size": obj.size,
                "eTag": obj.e_tag,
                **({"versionId": obj.version_id} if obj.version_id else {}),
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "ORC"])
def test_sends_the_routers_messages_once_per_current_image(
    aws_env: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    cfg = load_config()
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri = bs.report(MIXED, fmt=fmt, parts=3).put_to(s3, bs.INVENTORY)
        code, summary, err = _run(capsys, uri, *CLI_BASE)
        messages = bs.drain(sqs, url)
    assert code == 0, err
    assert summary["status"] == "complete"
    assert (summary["rows_read"], summary["selected"], summary["sent"]) == (8, 4, 4)
    assert summary["skipped"] == {"delete_marker": 1, "not_latest": 1, "suffix": 2}
    assert summary["inputs"] == {"total": 3, "done": 3}
    by_key = {parse_message(m["Body"]).key: m for m in messages}
    assert set(by_key) == SENT and len(messages) == len(SENT)
    for obj in MIXED:
        if obj.key not in SENT or not obj.is_latest:
            continue
        m = by_key[obj.key]
        msg = parse_message(m["Body"])
        assert (msg.kind, msg.origin, msg.bucket) == ("upsert", "backfill", bs.SOURCE)
        assert (msg.size, msg.etag, msg.version_id) == (obj.size, obj.e_tag, obj.version_id)
        # the router's group for the same object, so live and backfill run in order
        live = from_s3_record(_event_record(obj))
        assert live.key == obj.key
        assert m["Attributes"]["MessageDeduplicationId"] == dedup_id(msg)
        assert m["Attributes"]["MessageGroupId"] == group_id(bs.SOURCE, obj.key, cfg.message_groups)


def test_live_event_and_backfill_queue_in_one_group_and_a_rerun_collapses(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config()
    obj = MIXED[0]
    with mock_aws():
        s3, sqs, url = bs.make_world()
        live = from_s3_record(_event_record(obj))
        sqs.send_message_batch(QueueUrl=url, Entries=[to_send_entry(live, cfg.message_groups, "0")])
        uri = bs.report([obj]).put_to(s3, bs.INVENTORY)
        code, summary, _ = _run(capsys, uri, *CLI_BASE)
        again, summary2, _ = _run(capsys, uri, *CLI_BASE, "--restart")
        messages = bs.drain(sqs, url)
    assert code == again == 0 and summary["sent"] == summary2["sent"] == 1
    # the live event and one backfill copy (the re-run's copy collapsed by dedup id), in
    # the same message group; the embedder answers the second with `unchanged`
    assert sorted(parse_message(m["Body"]).origin for m in messages) == ["backfill", "event"]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {
        group_id(bs.SOURCE, obj.key, cfg.message_groups)
    }


def test_dry_run_counts_samples_and_estimates_without_sending(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config()
    objs = bs.images(40) + MIXED
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri = bs.report(objs, parts=2).put_to(s3, bs.INVENTORY)
        code, summary, _ = _run(capsys, uri, *CLI_BASE, "--dry-run", "--samples", "3")
        assert bs.drain(sqs, url) == []
    assert code == 0 and summary["status"] == "dry_run" and summary["sent"] == 0
    assert summary["selected"] == 44
    assert summary["selected_bytes"] == sum(range(1000, 1040)) + 2048 + 4096 + 10 + 300
    assert [s["uri"] for s in summary["samples"]] == [
        f"s3://photos/img/0000{i}.jpg" for i in range(3)
    ]
    assert summary["skipped_samples"]["suffix"] == ["2024/notes.txt", "folder/"]
    est = summary["estimate"]
    assert est["images"] == 44
    assert est["parallel_embeddings"] == cfg.embedder_concurrency
    assert est["duration_s"] == pytest.approx(44 * 0.5 / cfg.embedder_concurrency)
    assert est["total_cost_usd"] > 0
    assert not (aws_env / "imgsearch-backfill.checkpoint.json").exists()


def test_filters_from_the_command_line(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = datetime(2023, 1, 1, tzinfo=UTC)
    objs = [
        Obj("a/small.jpg", size=10),
        Obj("a/big.jpg", size=10_000_000),
        Obj("a/ok.jpg", size=50_000),
        Obj("a/old.jpg", size=50_000, last_modified=old),
        Obj("b/elsewhere.jpg", size=50_000),
        Obj("a/raw.tiff", size=50_000),
    ]
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri = bs.report(objs).put_to(s3, bs.INVENTORY)
        code, summary, _ = _run(
            capsys,
            uri,
            *CLI_BASE,
            "--prefix", "a/",
            "--suffix", ".jpg",
            "--suffix", ".TIFF",
            "--min-size", "1K",
            "--max-size", "5MiB",
            "--modified-after", "2024-01-01",
        )  # fmt: skip
        keys = sorted(parse_message(m["Body"]).key for m in bs.drain(sqs, url))
    assert code == 0
    assert keys == ["a/ok.jpg", "a/raw.tiff"]
    assert summary["skipped"] == {
        "too_small": 1,
        "too_large": 1,
        "modified_before": 1,
        "prefix": 1,
    }


def test_from_listing_for_a_bucket_without_inventory(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        for i in range(23):
            s3.put_object(Bucket=bs.SOURCE, Key=f"pics/{i:02d} x.jpg", Body=b"img")
        s3.put_object(Bucket=bs.SOURCE, Key="pics/readme.md", Body=b"x")
        s3.put_object(Bucket=bs.SOURCE, Key="other/1.jpg", Body=b"x")
        code, summary, _ = _run(capsys, "--from-listing", f"s3://{bs.SOURCE}/pics/", *CLI_BASE)
        messages = bs.drain(sqs, url)
        again, second, _ = _run(capsys, "--from-listing", f"s3://{bs.SOURCE}/pics/", *CLI_BASE)
    assert code == 0 and summary["sent"] == 23 and summary["skipped"] == {"suffix": 1}
    assert len(messages) == 23
    assert parse_message(messages[0]["Body"]).etag  # the listing's ETag, quotes stripped
    assert again == 0 and second["status"] == "already_complete"


@pytest.mark.parametrize("owner", ["123456789012", None])
def test_from_listing_names_the_source_buckets_owner(
    aws_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    owner: str | None,
) -> None:
    """The listing is a call on the source bucket: it pins the configured owner, as the
    embedder's reads do, so another account's bucket of that name is refused (403)."""
    sent: list[tuple[str, str | None]] = []  # moto ignores the header: read it as it leaves

    def record(request: Any, **_: Any) -> None:
        header = request.headers.get("x-amz-expected-bucket-owner")
        sent.append((request.url, header.decode() if isinstance(header, bytes) else header))

    handlers = [*botocore.handlers.BUILTIN_HANDLERS, ("before-send.s3", record)]
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", handlers)
    pinned = ("-c", f"source_bucket_owner={owner}") if owner else ()
    with mock_aws():
        s3, _, _ = bs.make_world()
        s3.put_object(Bucket=bs.SOURCE, Key="pics/a.jpg", Body=b"img")
        sent.clear()
        code, summary, _ = _run(
            capsys, "--from-listing", f"s3://{bs.SOURCE}/pics/", *CLI_BASE, *pinned
        )
    assert code == 0 and summary["sent"] == 1
    listed = [header for url, header in sent if "list-type=2" in url]
    assert listed and set(listed) == {owner}, sent


def test_checkpoint_refuses_another_manifest_unless_restart(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        first = bs.report(bs.images(5), timestamp="2024-05-01T01-00Z").put_to(s3, bs.INVENTORY)
        second = bs.report(bs.images(7), timestamp="2024-05-02T01-00Z").put_to(s3, bs.INVENTORY)
        assert _run(capsys, first, *CLI_BASE)[0] == 0
        code, _, err = _run(capsys, second, *CLI_BASE)
        assert code == 2 and "is for another input" in err and "--restart" in err
        code, _, err = _run(capsys, first, *CLI_BASE, "--min-size", "1")
        assert code == 2 and "other filters (min_size)" in err
        code, summary, _ = _run(capsys, second, *CLI_BASE, "--restart")
        assert code == 0 and summary["sent"] == 7
        assert len(bs.drain(sqs, url)) == 7  # the first 5 keys again collapse by dedup id


def test_names_from_the_stack_outputs(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = {
        "Resources": {
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "from-stack.fifo", "FifoQueue": True},
            }
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "Queue"}},
            "SourceBucketName": {"Value": bs.SOURCE},
            "InventoryBucketName": {"Value": bs.INVENTORY},
        },
    }
    with mock_aws():
        s3, sqs, url = bs.make_world()
        boto3.client("cloudformation", region_name=bs.REGION).create_stack(
            StackName=load_config().stack_name, TemplateBody=json.dumps(template)
        )
        bs.report(bs.images(12)).put_to(s3, bs.INVENTORY)
        code, summary, err = _run(capsys, "latest", "--progress", "none")
        stack_url = sqs.get_queue_url(QueueName="from-stack.fifo")["QueueUrl"]
        assert code == 0, err
        assert summary["queue_url"] == stack_url and summary["sent"] == 12
        assert len(bs.drain(sqs, stack_url)) == 12 and bs.drain(sqs, url) == []


# --------------------------------------------------------------------------- errors


def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("imgsearch-backfill: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_error_wrong_path(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(aws_env / "nope" / "manifest.json"), *CLI_BASE, "--dry-run")
    _assert_one_line_error(code, err, "no such file or directory")


def test_error_manifest_of_another_bucket(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = bs.report(bs.images(2), source="someone-elses").write_to(aws_env / "inv")
    code, _, err = _run(capsys, str(path), *CLI_BASE, "--dry-run")
    _assert_one_line_error(code, err, "'someone-elses'", "'photos'", "--bucket someone-elses")


def test_error_unknown_format(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = bs.report(bs.images(2))
    report.files[report.manifest_key] = report.files[report.manifest_key].replace(
        b'"CSV"', b'"Avro"'
    )
    del report.files[report.manifest_key.replace(".json", ".checksum")]
    code, _, err = _run(capsys, str(report.write_to(aws_env)), *CLI_BASE, "--dry-run")
    _assert_one_line_error(code, err, "fileFormat 'Avro' is not supported")


@pytest.mark.parametrize("damage", ["missing", "md5", "gzip"])
def test_error_damaged_data_files_send_nothing_from_them(
    aws_env: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        report = bs.report(bs.images(30), parts=3)
        data_keys = [k for k in report.files if k.endswith(".csv.gz")]
        bad = data_keys[1]
        if damage == "md5":
            report.files[bad] = bs.csv_gz(bs.images(9))
        uri = report.put_to(s3, bs.INVENTORY)
        if damage == "missing":
            s3.delete_object(Bucket=bs.INVENTORY, Key=bad)
        if damage == "gzip":  # damaged at the source: the listed MD5 is of the broken file
            raw = json.loads(report.files[report.manifest_key])
            broken = report.files[bad][:40]
            raw["files"][1]["MD5checksum"] = hashlib.md5(broken).hexdigest()
            manifest = json.dumps(raw).encode()
            s3.put_object(Bucket=bs.INVENTORY, Key=bad, Body=broken)
            s3.put_object(Bucket=bs.INVENTORY, Key=report.manifest_key, Body=manifest)
            s3.put_object(
                Bucket=bs.INVENTORY,
                Key=report.manifest_key.replace(".json", ".checksum"),
                Body=hashlib.md5(manifest).hexdigest().encode(),
            )
        # without the MD5 pre-pass (test_backfill_integrity checks it), as gzip damage
        # at the source must be handled anyway: found while the file is read
        code, summary, err = _run(capsys, uri, *CLI_BASE, "--no-verify-first")
        sent = bs.drain(sqs, url)
        checkpoint = json.loads((aws_env / "imgsearch-backfill.checkpoint.json").read_text())
    needle = {"missing": "does not exist", "md5": "does not match", "gzip": "not valid gzip"}[
        damage
    ]
    _assert_one_line_error(code, err, needle, bad)
    assert summary["status"] == "failed" and summary["sent"] == 10
    assert len(sent) == 10  # the first data file only
    assert checkpoint["inputs"][data_keys[0]]["done"] is True
    assert not checkpoint["inputs"].get(bad, {}).get("done") and not checkpoint["complete"]


def test_error_queue_missing(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=bs.REGION)
        s3.create_bucket(Bucket=bs.INVENTORY)
        uri = bs.report(bs.images(2)).put_to(s3, bs.INVENTORY)
        code, _, err = _run(capsys, uri, *CLI_BASE)
    _assert_one_line_error(code, err, "'imgsearch-embed.fifo' does not exist", "--queue-url")


def test_error_explicit_queue_url_missing(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, _, url = bs.make_world()
        uri = bs.report(bs.images(2)).put_to(s3, bs.INVENTORY)
        code, _, err = _run(capsys, uri, *CLI_BASE, "--queue-url", url.replace("embed", "gone"))
    _assert_one_line_error(code, err, "does not exist")


def test_error_queue_not_fifo(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world(fifo=False)
        uri = bs.report(bs.images(2)).put_to(s3, bs.INVENTORY)
        code, _, err = _run(capsys, uri, *CLI_BASE, "--queue-url", url)
        assert (
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
            == "0"
        )
    _assert_one_line_error(code, err, "is not a FIFO queue")


def test_error_no_credentials(
    aws_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    path = bs.report(bs.images(2)).write_to(aws_env / "inv")
    code, _, err = _run(capsys, str(path), *CLI_BASE)
    _assert_one_line_error(code, err, "no AWS credentials found")


def test_error_endpoint_down_names_the_cause_not_only_the_fallback(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No stack output because the endpoint is down: say so, not just 'no stack output'."""
    code, _, err = _run(
        capsys,
        "--from-listing",
        f"s3://{bs.SOURCE}/",
        "--endpoint-url",
        "http://127.0.0.1:1",
        "--progress",
        "none",
    )
    _assert_one_line_error(code, err, "cannot tell which bucket", "http://127.0.0.1:1", "--bucket")


def test_error_usage(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "x", "--from-listing", "s3://b/p", *CLI_BASE)
    _assert_one_line_error(code, err, "not both")
    code, _, err = _run(capsys, *CLI_BASE)
    _assert_one_line_error(code, err, "give a manifest", "--from-listing s3://")
    assert "not both" not in err  # nothing was given: "not both" would mislead
    code, _, err = _run(capsys, "--from-listing", "photos/x", *CLI_BASE)
    _assert_one_line_error(code, err, "expected s3://bucket/prefix")
    code, _, err = _run(capsys, "--from-listing", "s3:///x", *CLI_BASE, "--dry-run")
    _assert_one_line_error(code, err, "'s3:///x'", "needs a bucket")
    code, _, err = _run(capsys, "s3:///report/", *CLI_BASE, "--dry-run")
    _assert_one_line_error(code, err, "'s3:///report/'", "needs a bucket")


def test_error_bad_filter_values(aws_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ours, not argparse's "invalid parse_size value": the message says what to type."""
    code, _, err = _run(capsys, "latest", "--min-size", "lots", *CLI_BASE)
    _assert_one_line_error(code, err, "size 'lots'", "20MiB")
    code, _, err = _run(capsys, "latest", "--modified-after", "May", *CLI_BASE)
    _assert_one_line_error(code, err, "--modified-after 'May'", "2024-05-01")


def test_log_lines_on_stderr_json_alone_on_stdout(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        uri = bs.report(bs.images(15)).put_to(s3, bs.INVENTORY)
        code, summary, err = _run(capsys, uri, *CLI_BASE, "--progress", "log")
    assert code == 0 and summary["sent"] == 15  # stdout parsed as one JSON document
    assert err.splitlines()[-1].startswith("backfill: 100.0% sent 15 · rows 15")
