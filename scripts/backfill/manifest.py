"""S3 Inventory reports for the backfill: finding the newest, reading and verifying them.

An inventory report is a folder ``<dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/``
holding ``manifest.json`` (format, schema, and the data files with their MD5) and
``manifest.checksum`` (the MD5 of ``manifest.json``); the data files live under
``<config-id>/data/``. This module finds the newest report and checks the manifest's MD5
and fields; :mod:`scripts.backfill.datafiles` checks the data files' MD5 before a single
row is trusted, and :mod:`scripts.backfill.rows` then reads the rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeAlias

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_bucket, is_missing_object
from imgsearch.s3uri import S3Uri, is_s3_uri, parse_s3_uri
from scripts.backfill.errors import InventoryError
from scripts.common.errors import describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3ClientFactory: TypeAlias = "Callable[[], S3Client]"
"""Returns the S3 client; called only when something really lives in S3."""

FORMATS: dict[str, str] = {"csv": "CSV", "parquet": "Parquet", "orc": "ORC"}
"""``fileFormat`` values S3 Inventory writes (matched case-insensitively)."""
DATED_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")
MANIFEST_NAME = "manifest.json"
CHECKSUM_NAME = "manifest.checksum"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class DataFile:
    key: str
    size: int
    md5: str


@dataclass(frozen=True)
class Manifest:
    location: str
    """Where the manifest was read (``s3://...`` or a local path), for messages."""
    source_bucket: str
    file_format: str
    """``CSV``, ``Parquet`` or ``ORC``."""
    file_schema: tuple[str, ...]
    """CSV: the column names in order (the files have no header). Parquet/ORC: the
    manifest's schema text as one item (the files carry their own schema)."""
    files: tuple[DataFile, ...]
    creation_timestamp: str
    identity: str
    """SHA-256 of the manifest bytes: the same report, wherever it was read from."""
    checksum_verified: bool
    """False when no ``manifest.checksum`` was found next to the manifest."""
    data_bucket: str | None
    """Bucket holding the data files (the manifest's own bucket) or None if local."""
    local_dir: Path | None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# --------------------------------------------------------------------------- finding reports


def resolve_manifest(
    ref: str,
    s3: S3ClientFactory,
    *,
    inventory_bucket: str | None = None,
    source_bucket: str | None = None,
    config_id: str | None = None,
) -> S3Uri | Path:
    """Turn what the operator typed into the manifest to read.

    ``ref`` is a ``manifest.json`` (S3 URI or path), a folder holding dated report
    folders (the newest with a manifest wins), or ``latest``: the stack's inventory
    bucket, ``<source-bucket>/<config-id>/``, under whatever destination prefix.
    """
    if ref == "latest":
        if not inventory_bucket:
            raise InventoryError(
                "'latest' needs the inventory bucket: deploy the stack (output "
                "InventoryBucketName) or pass --inventory-bucket"
            )
        if not source_bucket or not config_id:
            raise InventoryError("'latest' needs the source bucket: pass --bucket")
        prefix = _find_config_prefix(s3(), inventory_bucket, source_bucket, config_id)
        return _latest_in_s3(s3(), inventory_bucket, prefix)
    if is_s3_uri(ref):
        uri = parse_s3_uri(ref, "manifest")
        if uri.key.endswith(".json"):
            return uri
        prefix = uri.key if not uri.key or uri.key.endswith("/") else uri.key + "/"
        return _latest_in_s3(s3(), uri.bucket, prefix)
    path = Path(ref).expanduser()
    if path.is_dir():
        return _latest_in_dir(path)
    if path.is_file():
        return path
    raise InventoryError(
        f"{ref}: no such file or directory; give a manifest.json (local or s3://...), "
        "a folder of inventory reports, or 'latest'"
    )


def _list_folders(s3_client: S3Client, bucket: str, prefix: str) -> list[str]:
    folders: list[str] = []
    try:
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            folders.extend(str(p["Prefix"]) for p in page.get("CommonPrefixes") or [])
    except ClientError as exc:
        raise s3_error(exc, f"s3://{bucket}/{prefix}") from exc
    return folders


def _find_config_prefix(s3_client: S3Client, bucket: str, source: str, config_id: str) -> str:
    """``<dest-prefix>/<source>/<config-id>/``: tried at the root, then one folder down."""
    tail = f"{source}/{config_id}/"
    candidates = [tail, *(p + tail for p in _list_folders(s3_client, bucket, ""))]
    for prefix in candidates:
        try:
            found = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            raise s3_error(exc, f"s3://{bucket}/{prefix}") from exc
        if found.get("KeyCount", 0):
            return prefix
    raise InventoryError(
        f"no inventory '{config_id}' for bucket {source!r} in s3://{bucket}/ (looked for "
        f"[<prefix>/]{tail}); the first report can take up to 48 hours — use --from-listing "
        "until then"
    )


def _latest_in_s3(s3_client: S3Client, bucket: str, prefix: str) -> S3Uri:
    dated = [
        f
        for f in _list_folders(s3_client, bucket, prefix)
        if DATED_FOLDER.fullmatch(f[len(prefix) : -1])
    ]
    for folder in sorted(dated, reverse=True):
        key = folder + MANIFEST_NAME
        try:
            s3_client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_missing_object(exc):
                continue  # a report still being written has no manifest yet
            raise s3_error(exc, f"s3://{bucket}/{key}") from exc
        return S3Uri(bucket, key)
    raise InventoryError(
        f"no inventory report under s3://{bucket}/{prefix} (looked for "
        f"<YYYY-MM-DDTHH-MMZ>/{MANIFEST_NAME}); the first report can take up to 48 hours — "
        "use --from-listing until then"
    )


def _latest_in_dir(path: Path) -> Path:
    dated = sorted(
        (p for p in path.iterdir() if p.is_dir() and DATED_FOLDER.fullmatch(p.name)), reverse=True
    )
    for folder in dated:
        if (folder / MANIFEST_NAME).is_file():
            return folder / MANIFEST_NAME
    if (path / MANIFEST_NAME).is_file():
        return path / MANIFEST_NAME
    raise InventoryError(
        f"{path}: no inventory report here (looked for <YYYY-MM-DDTHH-MMZ>/{MANIFEST_NAME})"
    )


# --------------------------------------------------------------------------- manifests


def load_manifest(where: S3Uri | Path, s3: S3ClientFactory) -> Manifest:
    """Read and check a manifest: its own MD5, its format and every field we use."""
    if isinstance(where, S3Uri):
        raw = _get_bytes(s3(), where, "manifest")
        assert raw is not None
        checksum_key = where.key.rpartition("/")[0] + "/" + CHECKSUM_NAME
        checksum = _get_bytes(s3(), S3Uri(where.bucket, checksum_key.lstrip("/")), None)
        data_bucket: str | None = where.bucket
        local_dir = None
    else:
        try:
            raw = where.read_bytes()
        except OSError as exc:
            raise InventoryError(f"manifest {where}: {exc.strerror or exc}") from exc
        checksum_path = where.parent / CHECKSUM_NAME
        checksum = checksum_path.read_bytes() if checksum_path.is_file() else None
        data_bucket = None
        local_dir = where.parent
    location = str(where)
    if checksum is not None:
        expected = checksum.decode("ascii", "replace").strip().lower()
        actual = hashlib.md5(raw).hexdigest()
        if expected != actual:
            raise InventoryError(
                f"manifest {location}: MD5 {actual} does not match {CHECKSUM_NAME} ({expected}); "
                "the manifest is damaged or was changed — download the report again"
            )
    return parse_manifest(
        raw,
        location=location,
        checksum_verified=checksum is not None,
        data_bucket=data_bucket,
        local_dir=local_dir,
    )


def parse_manifest(
    raw: bytes,
    *,
    location: str,
    checksum_verified: bool,
    data_bucket: str | None,
    local_dir: Path | None,
) -> Manifest:
    """Validate the JSON of a manifest; every problem names the field."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InventoryError(f"manifest {location}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InventoryError(f"manifest {location}: expected a JSON object")

    def field(name: str) -> Any:
        if data.get(name) in (None, ""):
            raise InventoryError(f"manifest {location}: missing field {name!r}")
        return data[name]

    fmt_raw = str(field("fileFormat"))
    fmt = FORMATS.get(fmt_raw.lower())
    if fmt is None:
        raise InventoryError(
            f"manifest {location}: fileFormat {fmt_raw!r} is not supported "
            f"(supported: {', '.join(FORMATS.values())})"
        )
    schema: tuple[str, ...] = ()
    if fmt == "CSV":
        schema = tuple(c.strip() for c in str(field("fileSchema")).split(",") if c.strip())
        if "key" not in {normalise_column(c) for c in schema}:
            raise InventoryError(f"manifest {location}: fileSchema has no Key column")
    elif data.get("fileSchema"):
        schema = (str(data["fileSchema"]),)
    files_raw = field("files")
    if not isinstance(files_raw, list):
        raise InventoryError(f"manifest {location}: field 'files' must be a list")
    files: list[DataFile] = []
    for i, f in enumerate(files_raw):
        try:
            files.append(DataFile(str(f["key"]), int(f["size"]), str(f["MD5checksum"]).lower()))
        except (KeyError, TypeError, ValueError) as exc:
            raise InventoryError(
                f"manifest {location}: files[{i}] needs key, size and MD5checksum ({exc})"
            ) from exc
        _check_data_key(files[-1].key, f"manifest {location}: files[{i}]")
    return Manifest(
        location=location,
        source_bucket=str(field("sourceBucket")),
        file_format=fmt,
        file_schema=schema,
        files=tuple(files),
        creation_timestamp=str(data.get("creationTimestamp", "")),
        identity=hashlib.sha256(raw).hexdigest(),
        checksum_verified=checksum_verified,
        data_bucket=data_bucket,
        local_dir=local_dir,
    )


def _check_data_key(key: str, where: str) -> None:
    """S3 writes data-file keys as ``<prefix>/<source>/<config-id>/data/<name>``: a key
    that is absolute or climbs with ``..`` could make a local copy read any file on this
    machine (and a mismatch would print that file's MD5), so it is refused outright."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or ".." in parts or "\x00" in key or key.endswith("/"):
        raise InventoryError(
            f"{where}: data file key {key!r} is not a relative path inside the report; "
            "S3 never writes such a manifest — fetch the report again"
        )


def normalise_column(name: str) -> str:
    """``ETag``, ``e_tag`` -> ``etag``: CSV (PascalCase) and Parquet/ORC (snake_case) agree."""
    return name.strip().lower().replace("_", "")


_PARQUET_FIELD = re.compile(r"(?:required|optional|repeated)\s+\w+\s+(\w+)")
_ORC_FIELD = re.compile(r"[<,]\s*(\w+)\s*:")


def schema_columns(manifest: Manifest) -> frozenset[str] | None:
    """Normalised column names the manifest declares, or None if it does not say.

    CSV lists them (``Bucket, Key, Size``); Parquet writes a message schema
    (``message s3.inventory { required binary key (STRING); ... }``) and ORC a struct
    (``struct<bucket:string,key:string,...>``).
    """
    if manifest.file_format == "CSV":
        return frozenset(normalise_column(c) for c in manifest.file_schema)
    text = manifest.file_schema[0] if manifest.file_schema else ""
    pattern = _PARQUET_FIELD if manifest.file_format == "Parquet" else _ORC_FIELD
    names = frozenset(normalise_column(m) for m in pattern.findall(text))
    return names or None


# --------------------------------------------------------------------------- S3 helpers


def _get_bytes(s3_client: S3Client, uri: S3Uri, what: str | None) -> bytes | None:
    """The object's bytes; None if missing and ``what`` is None (optional object)."""
    try:
        return bytes(s3_client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    except ClientError as exc:
        if not is_missing_object(exc):
            raise s3_error(exc, str(uri)) from exc
        if what is None:
            return None
        raise InventoryError(f"{what} {uri}: no such object; check the path") from exc


def s3_error(exc: ClientError, where: str) -> InventoryError:
    """An S3 failure reading the inventory at ``where``, as the operator's one line."""
    if is_missing_bucket(exc):
        return InventoryError(f"{where}: bucket does not exist (check the name and --region)")
    return InventoryError(f"{where}: {describe_aws_error(exc)}")
