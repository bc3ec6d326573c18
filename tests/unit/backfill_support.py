"""Real S3 Inventory reports for the backfill tests, written the way S3 writes them.

A report is ``<dest-prefix>/<source>/<config-id>/data/<uuid>.<ext>`` data files plus
``<dest-prefix>/<source>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`` and
``manifest.checksum``. CSV rows have no header, every field quoted, keys URL-encoded
(form encoding: space -> ``+``); Parquet and ORC use snake_case columns and raw keys.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

SOURCE = "photos"
INVENTORY = "photos-inventory"
CONFIG_ID = "imgsearch-inventory"
DEST_PREFIX = "inv"
REGION = "us-east-1"
QUEUE = "imgsearch-embed.fifo"
CSV_COLUMNS = (
    "Bucket",
    "Key",
    "VersionId",
    "IsLatest",
    "IsDeleteMarker",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IntelligentTieringAccessTier",
)
CURRENT_ONLY_COLUMNS = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass")


@dataclass(frozen=True)
class Obj:
    key: str
    size: int | None = 1000
    etag: str | None = None
    version_id: str | None = None
    is_latest: bool = True
    is_delete_marker: bool = False
    last_modified: datetime = field(default_factory=lambda: datetime(2024, 3, 1, tzinfo=UTC))
    storage_class: str = "STANDARD"
    access_tier: str | None = None
    """Intelligent-Tiering only: ``FREQUENT_ACCESS`` ... ``DEEP_ARCHIVE_ACCESS``."""

    @property
    def e_tag(self) -> str | None:
        if self.is_delete_marker:
            return None
        return self.etag or hashlib.md5(self.key.encode()).hexdigest()


def images(n: int, prefix: str = "img/") -> list[Obj]:
    return [Obj(f"{prefix}{i:05d}.jpg", size=1000 + i) for i in range(n)]


# --------------------------------------------------------------------------- data files


def _csv_value(obj: Obj, column: str, bucket: str) -> str:
    values: dict[str, Any] = {
        "Bucket": bucket,
        "Key": quote_plus(obj.key, safe="/"),
        "VersionId": obj.version_id or "",
        "IsLatest": "true" if obj.is_latest else "false",
        "IsDeleteMarker": "true" if obj.is_delete_marker else "false",
        "Size": "" if obj.size is None or obj.is_delete_marker else str(obj.size),
        "LastModifiedDate": obj.last_modified.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "ETag": obj.e_tag or "",
        "StorageClass": "" if obj.is_delete_marker else obj.storage_class,
        "IntelligentTieringAccessTier": obj.access_tier or "",
    }
    return str(values[column])


def csv_gz(
    objs: Sequence[Obj], columns: Sequence[str] = CSV_COLUMNS, bucket: str = SOURCE
) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for obj in objs:
        writer.writerow([_csv_value(obj, c, bucket) for c in columns])
    return gzip.compress(text.getvalue().encode("utf-8"))


def _arrow_table(objs: Sequence[Obj], bucket: str) -> pa.Table:
    return pa.table(
        {
            "bucket": pa.array([bucket] * len(objs), pa.string()),
            "key": pa.array([o.key for o in objs], pa.string()),
            "version_id": pa.array([o.version_id for o in objs], pa.string()),
            "is_latest": pa.array([o.is_latest for o in objs], pa.bool_()),
            "is_delete_marker": pa.array([o.is_delete_marker for o in objs], pa.bool_()),
            "size": pa.array([None if o.is_delete_marker else o.size for o in objs], pa.int64()),
            "last_modified_date": pa.array(
                [o.last_modified for o in objs], pa.timestamp("ms", tz="UTC")
            ),
            "e_tag": pa.array([o.e_tag for o in objs], pa.string()),
            "storage_class": pa.array([o.storage_class for o in objs], pa.string()),
            "intelligent_tiering_access_tier": pa.array([o.access_tier for o in objs], pa.string()),
        }
    )


PARQUET_SCHEMA = (
    "message s3.inventory {  required binary bucket (STRING);  required binary key (STRING);  "
    "optional binary version_id (STRING);  optional boolean is_latest;  optional boolean "
    "is_delete_marker;  optional int64 size;  optional int64 last_modified_date "
    "(TIMESTAMP(MILLIS,true));  optional binary e_tag (STRING);  optional binary storage_class "
    "(STRING);  optional binary intelligent_tiering_access_tier (STRING);}"
)
ORC_SCHEMA = (
    "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:"
    "boolean,size:bigint,last_modified_date:timestamp,e_tag:string,storage_class:string,"
    "intelligent_tiering_access_tier:string>"
)


def parquet(objs: Sequence[Obj], bucket: str = SOURCE, row_group_size: int = 64) -> bytes:
    out = io.BytesIO()
    pq.write_table(_arrow_table(objs, bucket), out, row_group_size=row_group_size)
    return out.getvalue()


def orc_file(objs: Sequence[Obj], bucket: str = SOURCE) -> bytes:
    out = io.BytesIO()
    orc.write_table(_arrow_table(objs, bucket), out, stripe_size=64 * 1024)
    return out.getvalue()


# --------------------------------------------------------------------------- reports


@dataclass
class Report:
    """The files of one inventory report, relative to the destination bucket's root."""

    files: dict[str, bytes]
    manifest_key: str

    def write_to(self, root: Path) -> Path:
        for key, data in self.files.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root / self.manifest_key

    def put_to(self, s3: Any, bucket: str) -> str:
        for key, data in self.files.items():
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{self.manifest_key}"


def chunks(objs: Sequence[Obj], parts: int) -> Iterator[Sequence[Obj]]:
    size = max(1, -(-len(objs) // parts))
    for i in range(0, len(objs), size):
        yield objs[i : i + size]


def report(
    objs: Sequence[Obj],
    *,
    fmt: str = "CSV",
    parts: int = 1,
    source: str = SOURCE,
    columns: Sequence[str] = CSV_COLUMNS,
    timestamp: str = "2024-05-01T01-00Z",
    dest_prefix: str = DEST_PREFIX,
    dest_bucket: str = INVENTORY,
    data_override: dict[int, bytes] | None = None,
) -> Report:
    """A report of ``objs`` split over ``parts`` data files; ``data_override`` replaces
    the bytes of data file N after its MD5 went into the manifest (damage in transit)."""
    base = f"{dest_prefix}/{source}/{CONFIG_ID}" if dest_prefix else f"{source}/{CONFIG_ID}"
    files: dict[str, bytes] = {}
    listed = []
    for i, part in enumerate(chunks(objs, parts)):
        if fmt == "CSV":
            data, ext = csv_gz(part, columns, source), "csv.gz"
        elif fmt == "Parquet":
            data, ext = parquet(part, source), "parquet"
        else:
            data, ext = orc_file(part, source), "orc"
        key = f"{base}/data/{uuid.uuid4()}.{ext}"
        listed.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
        files[key] = (data_override or {}).get(i, data)
    schema = {"CSV": ", ".join(columns), "Parquet": PARQUET_SCHEMA, "ORC": ORC_SCHEMA}.get(fmt, "")
    manifest = {
        "sourceBucket": source,
        "destinationBucket": f"arn:aws:s3:::{dest_bucket}",
        "version": "2016-11-30",
        "creationTimestamp": "1714525200000",
        "fileFormat": fmt,
        "fileSchema": schema,
        "files": listed,
    }
    raw = json.dumps(manifest, indent=2).encode()
    manifest_key = f"{base}/{timestamp}/manifest.json"
    files[manifest_key] = raw
    files[f"{base}/{timestamp}/manifest.checksum"] = hashlib.md5(raw).hexdigest().encode()
    return Report(files, manifest_key)


# --------------------------------------------------------------------------- AWS


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Fake credentials, one region, no profile or endpoint leaking in; cwd = tmp_path."""
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_world(*, fifo: bool = True) -> tuple[Any, Any, str]:
    """Source + inventory buckets and the pipeline's queue (inside ``mock_aws``)."""
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=INVENTORY)
    if fifo:
        url = sqs.create_queue(
            QueueName=QUEUE, Attributes={"FifoQueue": "true", "VisibilityTimeout": "900"}
        )["QueueUrl"]
    else:
        url = sqs.create_queue(QueueName="imgsearch-embed")["QueueUrl"]
    return s3, sqs, url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message in the queue (received and deleted), with its attributes."""
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            AttributeNames=["MessageGroupId", "MessageDeduplicationId"],
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


CLI_BASE = ("--no-stack", "--progress", "none", "-c", f"source_bucket_name={SOURCE}")
