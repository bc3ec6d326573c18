"""What the backfill refuses or skips before it sends: damaged or hostile reports,
archived objects, names S3 would refuse; and its leftovers after a crash."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgsearch.aws_errors import is_missing_object
from imgsearch.blueprint import INVENTORY_FIELDS
from imgsearch.messages import parse_message
from scripts.backfill.checkpoint import Checkpoint, LocalCheckpointStore
from scripts.backfill.cli import DEFAULT_CHECKPOINT, main
from scripts.backfill.datafiles import fetch_data_file, verify_data_files
from scripts.backfill.errors import InventoryError
from scripts.backfill.manifest import load_manifest
from scripts.backfill.run import DEFAULT_REJECTS
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


def _with_first_key(report: bs.Report, key: str) -> bs.Report:
    """``report`` with its first data file's key replaced (manifest.checksum kept valid)."""
    manifest = json.loads(report.files[report.manifest_key])
    manifest["files"][0]["key"] = key
    raw = json.dumps(manifest).encode()
    report.files[report.manifest_key] = raw
    report.files[report.manifest_key.replace(".json", ".checksum")] = (
        hashlib.md5(raw).hexdigest().encode()
    )
    return report


@pytest.mark.parametrize("key", ["/etc/hostname", "../../../../etc/hostname", "data/../../x"])
def test_a_local_manifest_cannot_name_files_outside_its_report(tmp_path: Path, key: str) -> None:
    path = _with_first_key(bs.report(bs.images(2)), key).write_to(tmp_path / "copy")
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


@pytest.mark.parametrize("above", [1, 2, 3, 4])
@pytest.mark.parametrize("prefix", ["a/", "x/etc/", ""])
def test_a_local_manifest_cannot_reach_a_file_in_the_folders_above_its_report(
    tmp_path: Path, above: int, prefix: str
) -> None:
    """A relative key whose tail names a file above the report's ``<config-id>`` folder
    (``etc/hostname`` next to a copy under ``/``) finds nothing: its MD5 is never printed."""
    report = bs.report(bs.images(2))
    manifest_dir = (tmp_path / "copy" / report.manifest_key).parent
    decoy = manifest_dir.parents[above] / "decoy.txt"  # parents[0]: the <config-id> folder
    decoy.parent.mkdir(parents=True, exist_ok=True)
    decoy.write_bytes(b"a file the report does not hold")
    path = _with_first_key(report, prefix + "decoy.txt").write_to(tmp_path / "copy")
    manifest = load_manifest(path, _no_s3)
    for check in (
        lambda: verify_data_files(manifest, _no_s3),
        lambda: fetch_data_file(manifest, manifest.files[0], _no_s3, tmp_path),
    ):
        with pytest.raises(InventoryError, match="missing") as caught:
            check()
        assert hashlib.md5(decoy.read_bytes()).hexdigest() not in str(caught.value)
        assert not MD5_HEX.search(str(caught.value))


@pytest.mark.parametrize(
    "where",
    ["data/{name}", "{ts}/{name}", "{ts}/data/{name}"],
    ids=["config-id-data", "dated-folder", "dated-folder-data"],
)
def test_a_local_copy_finds_its_data_files_where_a_download_puts_them(
    tmp_path: Path, where: str
) -> None:
    """Under the ``<config-id>`` folder as S3 holds it, or next to the manifest."""
    report = bs.report(bs.images(3))
    data_key = next(k for k in report.files if k.endswith(".csv.gz"))
    config_dir, ts = report.manifest_key.rsplit("/", 2)[:2]
    name = data_key.rsplit("/", 1)[1]
    data = report.files.pop(data_key)
    path = report.write_to(tmp_path)
    target = tmp_path / config_dir / where.format(name=name, ts=ts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    manifest = load_manifest(path, _no_s3)
    verify_data_files(manifest, _no_s3)
    assert fetch_data_file(manifest, manifest.files[0], _no_s3, tmp_path) == target


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


REPO = Path(__file__).resolve().parents[2]


def test_the_backfills_default_outputs_are_git_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They list bucket keys: run from inside a checkout, they must never be committed."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    renamed: list[str] = []  # the temporary file a real save writes (a kill would leave it)
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        renamed.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    LocalCheckpointStore(tmp_path / DEFAULT_CHECKPOINT).save(
        Checkpoint("manifest:abc", "s3://x/manifest.json", {"bucket": "b"})
    )
    names = [DEFAULT_CHECKPOINT, DEFAULT_REJECTS, *renamed]
    assert len(names) == 3
    paths = [*names, *(f"some/sub folder/{n}" for n in names)]
    for path in paths:
        checked = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=REPO, check=False
        )
        assert checked.returncode == 0, f"{path} is not git-ignored"
    control = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", "scripts/backfill/run.py"],
        cwd=REPO,
        check=False,
    )
    assert control.returncode == 1  # the check itself works
