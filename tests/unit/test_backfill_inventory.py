"""Reading S3 Inventory reports: formats, decoding, checksums, finding the newest."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from imgsearch.s3uri import S3Uri
from scripts.backfill.datafiles import fetch_data_file
from scripts.backfill.errors import InventoryError
from scripts.backfill.manifest import Manifest, load_manifest, resolve_manifest, schema_columns
from scripts.backfill.rows import InventoryRow, ListingRows, open_rows
from tests.unit import backfill_support as bs
from tests.unit.backfill_support import Obj, aws_env

__all__ = ["aws_env"]

TRICKY = [
    Obj("plain/a.jpg", size=10),
    Obj("with space/b c.jpg", size=11),
    Obj("plus+sign/d+e.png", size=12),
    Obj("percent%41/100%.gif", size=13),
    Obj("unicode/日本語/été/Ünï.webp", size=14),
    Obj('comma,and"quote/f.jpg', size=15),
    Obj("emoji/🙂.jpeg", size=16),
]


def _rows(manifest: Manifest, workdir: Path, start: int = 0) -> list[InventoryRow]:
    out: list[InventoryRow] = []
    for data in manifest.files:
        path = fetch_data_file(manifest, data, _no_s3, workdir)
        reader = open_rows(manifest, path, data.key)
        out.extend(reader.rows(start))
        reader.close()
    return out


def _no_s3() -> Any:
    raise AssertionError("a local report must not touch S3")


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "ORC"])
def test_every_format_yields_the_real_keys_and_fields(tmp_path: Path, fmt: str) -> None:
    versioned = [
        Obj("v/current.jpg", version_id="v2", etag="e2"),
        Obj("v/current.jpg", version_id="v1", is_latest=False, etag="e1"),
        Obj("v/deleted.jpg", version_id="v3", is_delete_marker=True, size=None),
    ]
    objs = TRICKY + versioned
    manifest_path = bs.report(objs, fmt=fmt, parts=2).write_to(tmp_path / "copy")
    manifest = load_manifest(manifest_path, _no_s3)
    assert manifest.file_format == fmt
    assert manifest.checksum_verified
    rows = _rows(manifest, tmp_path)
    assert [r.key for r in rows] == [o.key for o in objs]
    assert [r.size for r in rows[: len(TRICKY)]] == [o.size for o in TRICKY]
    assert [r.etag for r in rows[: len(TRICKY)]] == [o.e_tag for o in TRICKY]
    current, old, marker = rows[len(TRICKY) :]
    assert (current.version_id, current.is_latest, current.is_delete_marker) == ("v2", True, False)
    assert (old.version_id, old.is_latest, old.etag) == ("v1", False, "e1")
    assert marker.is_delete_marker and marker.size is None
    modified = rows[0].last_modified
    assert modified is not None
    when = modified if isinstance(modified, datetime) else datetime.fromisoformat(modified)
    assert when == datetime(2024, 3, 1, tzinfo=UTC)


def test_csv_keys_are_form_decoded_space_is_plus_and_plus_is_percent_2b(tmp_path: Path) -> None:
    manifest_path = bs.report(TRICKY[1:3]).write_to(tmp_path)
    raw = gzip.decompress(next(p for p in tmp_path.rglob("*.csv.gz")).read_bytes()).decode()
    assert '"with+space/b+c.jpg"' in raw and '"plus%2Bsign/d%2Be.png"' in raw
    rows = _rows(load_manifest(manifest_path, _no_s3), tmp_path)
    assert [r.key for r in rows] == ["with space/b c.jpg", "plus+sign/d+e.png"]


def test_current_only_csv_without_version_columns(tmp_path: Path) -> None:
    objs = bs.images(3)
    path = bs.report(objs, columns=bs.CURRENT_ONLY_COLUMNS).write_to(tmp_path)
    manifest = load_manifest(path, _no_s3)
    assert schema_columns(manifest) == frozenset(
        {
            "bucket",
            "key",
            "size",
            "lastmodifieddate",
            "etag",
            "storageclass",
        }
    )
    rows = _rows(manifest, tmp_path)
    assert all(r.is_latest and not r.is_delete_marker and r.version_id is None for r in rows)
    assert [r.size for r in rows] == [1000, 1001, 1002]


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "ORC"])
def test_rows_resume_from_an_offset(tmp_path: Path, fmt: str) -> None:
    objs = bs.images(150)
    manifest = load_manifest(bs.report(objs, fmt=fmt).write_to(tmp_path), _no_s3)
    assert [r.key for r in _rows(manifest, tmp_path, start=137)] == [o.key for o in objs[137:]]


def test_schema_columns_of_parquet_and_orc_manifests(tmp_path: Path) -> None:
    for fmt in ("Parquet", "ORC"):
        path = bs.report(bs.images(1), fmt=fmt).write_to(tmp_path / fmt)
        columns = schema_columns(load_manifest(path, _no_s3))
        assert columns is not None and {"key", "lastmodifieddate", "etag", "islatest"} <= columns


# --------------------------------------------------------------------------- damage


def test_manifest_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    path = bs.report(bs.images(2)).write_to(tmp_path)
    (path.parent / "manifest.checksum").write_text("0" * 32)
    with pytest.raises(InventoryError, match=r"manifest\.checksum"):
        load_manifest(path, _no_s3)


def test_data_file_md5_mismatch_is_refused_before_any_row(tmp_path: Path) -> None:
    good = bs.csv_gz(bs.images(3))
    other = bs.csv_gz(bs.images(4))
    path = bs.report(bs.images(3), data_override={0: other}).write_to(tmp_path)
    manifest = load_manifest(path, _no_s3)
    assert hashlib.md5(good).hexdigest() == manifest.files[0].md5
    with pytest.raises(InventoryError, match="does not match the manifest"):
        fetch_data_file(manifest, manifest.files[0], _no_s3, tmp_path)


def _with_data(tmp_path: Path, data: bytes) -> tuple[Manifest, str]:
    """A report whose data file is ``data``, listed with its MD5 (damaged at the source)."""
    report = bs.report(bs.images(1))
    key = next(k for k in report.files if k.endswith(".csv.gz"))
    report.files[key] = data
    raw = json.loads(report.files[report.manifest_key])
    raw["files"][0]["MD5checksum"] = hashlib.md5(data).hexdigest()
    report.files[report.manifest_key] = json.dumps(raw).encode()
    checksum_key = report.manifest_key.replace("manifest.json", "manifest.checksum")
    report.files[checksum_key] = hashlib.md5(report.files[report.manifest_key]).hexdigest().encode()
    return load_manifest(report.write_to(tmp_path), _no_s3), key


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[: len(d) // 2], "not valid gzip"),  # truncated
        (lambda d: b"PK\x03\x04 this is a zip, not a gzip", "not valid gzip"),
        (lambda d: d[: len(d) // 2] + bytes(64) + d[len(d) // 2 + 64 :], "row"),  # garbled
    ],
)
def test_corrupt_gzip_stops_with_the_file_name(tmp_path: Path, damage: Any, message: str) -> None:
    manifest, key = _with_data(tmp_path, damage(bs.csv_gz(bs.images(500))))
    with pytest.raises(InventoryError, match=message) as err:
        _rows(manifest, tmp_path)
    assert key in str(err.value)


def test_missing_local_data_file(tmp_path: Path) -> None:
    path = bs.report(bs.images(2)).write_to(tmp_path)
    for f in tmp_path.rglob("*.csv.gz"):
        f.unlink()
    manifest = load_manifest(path, _no_s3)
    with pytest.raises(InventoryError, match="is missing"):
        fetch_data_file(manifest, manifest.files[0], _no_s3, tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fileFormat": "Avro"}, "fileFormat 'Avro' is not supported"),
        ({"fileFormat": None}, "missing field 'fileFormat'"),
        ({"files": "nope"}, "'files' must be a list"),
        ({"fileSchema": "Bucket, Size"}, "no Key column"),
        ({"sourceBucket": ""}, "missing field 'sourceBucket'"),
    ],
)
def test_bad_manifests_name_the_field(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = bs.report(bs.images(1)).write_to(tmp_path)
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))
    (path.parent / "manifest.checksum").unlink()
    with pytest.raises(InventoryError, match=message):
        load_manifest(path, _no_s3)


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("<html>")
    with pytest.raises(InventoryError, match="not valid JSON"):
        load_manifest(path, _no_s3)


# --------------------------------------------------------------------------- finding reports


def test_local_folder_resolves_to_the_newest_report_with_a_manifest(tmp_path: Path) -> None:
    root = tmp_path / "inv"
    bs.report(bs.images(1), timestamp="2024-05-01T01-00Z").write_to(root)
    bs.report(bs.images(2), timestamp="2024-05-02T01-00Z").write_to(root)
    config_dir = root / bs.DEST_PREFIX / bs.SOURCE / bs.CONFIG_ID
    (config_dir / "2024-05-03T01-00Z").mkdir()  # still being written: no manifest yet
    (config_dir / "hive").mkdir()
    assert (
        resolve_manifest(str(config_dir), _no_s3)
        == config_dir / "2024-05-02T01-00Z" / "manifest.json"
    )


def test_wrong_local_path() -> None:
    with pytest.raises(InventoryError, match="no such file or directory"):
        resolve_manifest("/nonexistent/manifest.json", _no_s3)


def test_latest_in_s3_finds_the_config_under_any_destination_prefix(aws_env: Path) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        bs.report(bs.images(1), timestamp="2024-05-01T01-00Z").put_to(s3, bs.INVENTORY)
        newest = bs.report(bs.images(2), timestamp="2024-05-02T01-00Z")
        newest.put_to(s3, bs.INVENTORY)
        s3.put_object(
            Bucket=bs.INVENTORY,
            Key=f"{bs.DEST_PREFIX}/{bs.SOURCE}/{bs.CONFIG_ID}/2024-05-03T01-00Z/part",
            Body=b"",
        )
        found = resolve_manifest(
            "latest",
            lambda: s3,
            inventory_bucket=bs.INVENTORY,
            source_bucket=bs.SOURCE,
            config_id=bs.CONFIG_ID,
        )
        assert found == S3Uri(bs.INVENTORY, newest.manifest_key)
        folder = f"s3://{bs.INVENTORY}/{bs.DEST_PREFIX}/{bs.SOURCE}/{bs.CONFIG_ID}/"
        assert resolve_manifest(folder, lambda: s3) == found


def test_latest_without_any_report_says_to_wait_or_list(aws_env: Path) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        with pytest.raises(InventoryError, match="48 hours"):
            resolve_manifest(
                "latest",
                lambda: s3,
                inventory_bucket=bs.INVENTORY,
                source_bucket=bs.SOURCE,
                config_id=bs.CONFIG_ID,
            )


def test_s3_report_downloads_and_verifies(aws_env: Path) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        uri = bs.report(TRICKY, fmt="Parquet", parts=3).put_to(s3, bs.INVENTORY)
        where = resolve_manifest(uri, lambda: s3)
        manifest = load_manifest(where, lambda: s3)
        keys: list[str] = []
        for data in manifest.files:
            path = fetch_data_file(manifest, data, lambda: s3, aws_env)
            keys.extend(r.key for r in open_rows(manifest, path, data.key).rows(0))
        assert keys == [o.key for o in TRICKY]


def test_s3_missing_data_file_and_missing_manifest(aws_env: Path) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        report = bs.report(bs.images(2))
        uri = report.put_to(s3, bs.INVENTORY)
        data_key = next(k for k in report.files if k.endswith(".csv.gz"))
        s3.delete_object(Bucket=bs.INVENTORY, Key=data_key)
        manifest = load_manifest(resolve_manifest(uri, lambda: s3), lambda: s3)
        with pytest.raises(InventoryError, match="does not exist"):
            fetch_data_file(manifest, manifest.files[0], lambda: s3, aws_env)
        with pytest.raises(InventoryError, match="no such object"):
            load_manifest(S3Uri(bs.INVENTORY, "nope/manifest.json"), lambda: s3)
        with pytest.raises(InventoryError, match="bucket does not exist"):
            load_manifest(S3Uri("no-such-bucket", "x/manifest.json"), lambda: s3)


def test_listing_rows_resume_after_a_key(aws_env: Path) -> None:
    with mock_aws():
        s3, _, _ = bs.make_world()
        for key in ("a/1.jpg", "a/2 b.jpg", "a/3+c.jpg", "b/4.jpg"):
            s3.put_object(Bucket=bs.SOURCE, Key=key, Body=b"x" * 7)
        rows = list(ListingRows(s3, S3Uri(bs.SOURCE, "a/"), None).rows())
        assert [r.key for r in rows] == ["a/1.jpg", "a/2 b.jpg", "a/3+c.jpg"]
        assert rows[0].size == 7 and rows[0].etag and not rows[0].etag.startswith('"')
        after = list(ListingRows(s3, S3Uri(bs.SOURCE, "a/"), "a/2 b.jpg").rows())
        assert [r.key for r in after] == ["a/3+c.jpg"]
