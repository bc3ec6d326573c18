"""What the backfill refuses or skips before it sends: damaged or hostile reports,
archived objects, names S3 would refuse; and its leftovers after a crash."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgsearch.aws_errors import is_missing_object
from imgsearch.blueprint import INVENTORY_FIELDS
from imgsearch.messages import parse_message
from scripts.backfill.cli import main
from scripts.backfill.datafiles import fetch_data_file
from scripts.backfill.errors import InventoryError
from scripts.backfill.manifest import load_manifest
from tests.unit import backfill_support as bs
from tests.unit.backfill_support import CLI_BASE, Obj, aws_env

__all__ = ["aws_env"]

MD5_HEX = re.compile(r"\b[0-9a-f]{32}\b")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    summary = json.loads(out) if out.strip() else {}
    return code, summary, err


def _no_s3() -> Any:
    raise AssertionError("a local report must not touch S3")


# --------------------------------------------------------------------------- verify first


def _damaged_in_s3(s3: Any) -> tuple[str, str]:
    """A report of 3 data files whose second is not the file the manifest lists."""
    report = bs.report(bs.images(30), parts=3)
    bad = [k for k in report.files if k.endswith(".csv.gz")][1]
    report.files[bad] = bs.csv_gz(bs.images(9))
    return report.put_to(s3, bs.INVENTORY), bad


def test_a_damaged_second_data_file_sends_nothing_at_all(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri, bad = _damaged_in_s3(s3)
        code, summary, err = _run(capsys, uri, *CLI_BASE)
        sent = bs.drain(sqs, url)
    assert code == 2 and "does not match" in err and bad in err
    assert summary["status"] == "failed" and summary["sent"] == 0 and bad in summary["error"]
    assert sent == []  # the first file's rows were not sent either


def test_no_verify_first_sends_the_files_before_the_damaged_one(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri, _ = _damaged_in_s3(s3)
        code, summary, _ = _run(capsys, uri, *CLI_BASE, "--no-verify-first")
        sent = bs.drain(sqs, url)
    assert code == 2 and summary["sent"] == 10 and len(sent) == 10


def test_a_local_report_is_verified_first_too(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = bs.report(bs.images(20), parts=2)
    bad = [k for k in report.files if k.endswith(".csv.gz")][1]
    report.files[bad] = bs.csv_gz(bs.images(3))
    path = report.write_to(aws_env / "copy")
    with mock_aws():
        _, sqs, url = bs.make_world()
        code, summary, _ = _run(capsys, str(path), *CLI_BASE)
        assert bs.drain(sqs, url) == []
    assert code == 2 and summary["status"] == "failed" and summary["sent"] == 0


def test_a_bad_manifest_still_prints_the_summary(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = bs.report(bs.images(2))
    report.files[report.manifest_key] += b" "  # manifest.checksum no longer matches
    path = report.write_to(aws_env)
    code, summary, err = _run(capsys, str(path), *CLI_BASE)
    assert code == 2 and "does not match manifest.checksum" in err
    assert summary["status"] == "failed" and summary["sent"] == 0
    assert "manifest.checksum" in summary["error"] and summary["input"] == str(path)


def test_every_early_failure_prints_the_summary_too(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = bs.report(bs.images(2), source="someone-elses").write_to(aws_env / "inv")
    code, summary, err = _run(capsys, str(path), *CLI_BASE)
    assert code == 2 and err.count("\n") == 1
    assert summary["status"] == "failed" and "someone-elses" in summary["error"]


# --------------------------------------------------------------------------- archived objects


ARCHIVED = [
    Obj("a/standard.jpg"),
    Obj("a/glacier.jpg", storage_class="GLACIER"),
    Obj("a/deep.jpg", storage_class="DEEP_ARCHIVE"),
    Obj("a/instant.jpg", storage_class="GLACIER_IR"),
    Obj("a/it-frequent.jpg", storage_class="INTELLIGENT_TIERING", access_tier="FREQUENT_ACCESS"),
    Obj(
        "a/it-instant.jpg",
        storage_class="INTELLIGENT_TIERING",
        access_tier="ARCHIVE_INSTANT_ACCESS",
    ),
    Obj("a/it-archive.jpg", storage_class="INTELLIGENT_TIERING", access_tier="ARCHIVE_ACCESS"),
    Obj("a/it-deep.jpg", storage_class="INTELLIGENT_TIERING", access_tier="DEEP_ARCHIVE_ACCESS"),
]


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "ORC"])
def test_archived_rows_are_skipped_by_reason_not_sent(
    aws_env: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri = bs.report(ARCHIVED, fmt=fmt).put_to(s3, bs.INVENTORY)
        code, summary, err = _run(capsys, uri, *CLI_BASE)
        keys = {parse_message(m["Body"]).key for m in bs.drain(sqs, url)}
    assert code == 0, err
    assert keys == {"a/standard.jpg", "a/instant.jpg", "a/it-frequent.jpg", "a/it-instant.jpg"}
    assert summary["skipped"] == {"archived": 2, "archive_tier": 2}


def test_the_stack_inventory_lists_the_intelligent_tiering_access_tier() -> None:
    assert "IntelligentTieringAccessTier" in INVENTORY_FIELDS


# --------------------------------------------------------------------------- invalid names


def test_a_row_s3_would_refuse_is_skipped_with_a_reason(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objs = [Obj("a/ok.jpg"), Obj("a/" + "x" * 1100 + ".jpg"), Obj("a/fine.jpg")]
    with mock_aws():
        s3, sqs, url = bs.make_world()
        uri = bs.report(objs).put_to(s3, bs.INVENTORY)
        code, summary, err = _run(capsys, uri, *CLI_BASE)
        keys = {parse_message(m["Body"]).key for m in bs.drain(sqs, url)}
        dry, dry_summary, _ = _run(capsys, uri, *CLI_BASE, "--dry-run")
    assert code == 0 and "Traceback" not in err, err
    assert keys == {"a/ok.jpg", "a/fine.jpg"}
    assert summary["skipped"] == {"invalid_name": 1} and summary["sent"] == 2
    assert dry == 0 and dry_summary["skipped"] == {"invalid_name": 1}
    assert dry_summary["selected"] == 2


# --------------------------------------------------------------------------- hostile manifests


@pytest.mark.parametrize("key", ["/etc/hostname", "../../../../etc/hostname", "data/../../x"])
def test_a_local_manifest_cannot_name_files_outside_its_report(tmp_path: Path, key: str) -> None:
    report = bs.report(bs.images(2))
    manifest = json.loads(report.files[report.manifest_key])
    manifest["files"][0]["key"] = key
    raw = json.dumps(manifest).encode()
    report.files[report.manifest_key] = raw
    report.files[report.manifest_key.replace(".json", ".checksum")] = (
        hashlib.md5(raw).hexdigest().encode()
    )
    path = report.write_to(tmp_path / "copy")
    with pytest.raises(InventoryError) as caught:
        load_manifest(path, _no_s3)
    message = str(caught.value)
    assert repr(key) in message and "inside the report" in message
    assert not MD5_HEX.search(message)


def test_a_local_data_file_is_found_only_under_the_report(tmp_path: Path) -> None:
    """A symlink in the copy that leads out of it is not followed."""
    report = bs.report(bs.images(2))
    path = report.write_to(tmp_path / "copy")
    manifest = load_manifest(path, _no_s3)
    data = manifest.files[0]
    local = next((tmp_path / "copy").rglob(Path(data.key).name))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / local.name).write_bytes(local.read_bytes())
    local.unlink()
    local.symlink_to(outside / local.name)
    with pytest.raises(InventoryError, match="missing") as caught:
        fetch_data_file(manifest, data, _no_s3, tmp_path)
    assert not MD5_HEX.search(str(caught.value).replace(data.key, ""))


# --------------------------------------------------------------------------- leftovers


def test_the_next_run_removes_checkpoint_temp_files_a_kill_left(
    aws_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = [aws_env / "imgsearch-backfill.checkpoint.json.k1_9zq0a.tmp"]
    stale.append(aws_env / "imgsearch-backfill.checkpoint.json.abcdefgh.tmp")
    for p in stale:
        p.write_text('{"half":')
    unrelated = aws_env / "notes.abcdefgh.tmp"
    unrelated.write_text("mine")
    with mock_aws():
        s3, _, _ = bs.make_world()
        uri = bs.report(bs.images(3)).put_to(s3, bs.INVENTORY)
        code, _, err = _run(capsys, uri, *CLI_BASE)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and unrelated.exists()


def test_is_missing_object_tells_a_missing_key_from_a_missing_bucket() -> None:
    def error(code: str) -> ClientError:
        meta = {"HTTPStatusCode": 404}
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": meta}, "GetObject")

    assert is_missing_object(error("NoSuchKey")) and is_missing_object(error("404"))
    assert not is_missing_object(error("NoSuchBucket"))
