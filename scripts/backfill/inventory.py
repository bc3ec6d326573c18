"""S3 Inventory input for the backfill: manifests, data files, and a listing fallback.

An inventory report is a folder ``<dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/``
holding ``manifest.json`` (format, schema, and the data files with their MD5) and
``manifest.checksum`` (the MD5 of ``manifest.json``); the data files live under
``<config-id>/data/``. This module finds the newest report, checks both kinds of MD5
before a single row is trusted, and streams rows out of CSV (gzip), Parquet and ORC
files one at a time, so memory stays flat however large the inventory is.

Only CSV keys are URL-encoded (form encoding: a space is ``+``, a real ``+`` is
``%2B``), so they go through ``unquote_plus``; Parquet and ORC keys are stored as is.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from scripts.common.cli import CliError, describe_aws_error, error_code

S3ClientFactory = Callable[[], Any]
"""Returns the S3 client; called only when something really lives in S3."""

FORMATS: dict[str, str] = {"csv": "CSV", "parquet": "Parquet", "orc": "ORC"}
"""``fileFormat`` values S3 Inventory writes (matched case-insensitively)."""
DATED_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z")
MANIFEST_NAME = "manifest.json"
CHECKSUM_NAME = "manifest.checksum"
_CHUNK = 1024 * 1024
_ARROW_BATCH_ROWS = 16_384


class InventoryError(CliError):
    """The inventory cannot be used as given; the message names the file and the fix."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(text: str) -> S3Uri | None:
    """``s3://bucket/key`` -> :class:`S3Uri`; anything else -> None."""
    if not text.startswith("s3://"):
        return None
    bucket, _, key = text[5:].partition("/")
    if not bucket:
        raise InventoryError(f"{text!r}: an S3 URI needs a bucket, e.g. s3://bucket/prefix/")
    return S3Uri(bucket, key)


class InventoryRow(NamedTuple):
    """One object (version) of the source bucket, decoded."""

    key: str
    size: int | None
    etag: str | None
    version_id: str | None
    is_latest: bool
    is_delete_marker: bool
    last_modified: str | datetime | None
    """ISO string (CSV), datetime (Parquet/ORC/listing), or None if not inventoried."""


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
    uri = parse_s3_uri(ref)
    if uri is not None:
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


def _list_folders(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    folders: list[str] = []
    try:
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            folders.extend(str(p["Prefix"]) for p in page.get("CommonPrefixes") or [])
    except ClientError as exc:
        raise _s3_error(exc, f"s3://{bucket}/{prefix}") from exc
    return folders


def _find_config_prefix(s3_client: Any, bucket: str, source: str, config_id: str) -> str:
    """``<dest-prefix>/<source>/<config-id>/``: tried at the root, then one folder down."""
    tail = f"{source}/{config_id}/"
    candidates = [tail, *(p + tail for p in _list_folders(s3_client, bucket, ""))]
    for prefix in candidates:
        try:
            found = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except ClientError as exc:
            raise _s3_error(exc, f"s3://{bucket}/{prefix}") from exc
        if found.get("KeyCount", 0):
            return prefix
    raise InventoryError(
        f"no inventory '{config_id}' for bucket {source!r} in s3://{bucket}/ (looked for "
        f"[<prefix>/]{tail}); the first report can take up to 48 hours — use --from-listing "
        "until then"
    )


def _latest_in_s3(s3_client: Any, bucket: str, prefix: str) -> S3Uri:
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
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                continue  # a report still being written has no manifest yet
            raise _s3_error(exc, f"s3://{bucket}/{key}") from exc
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


# --------------------------------------------------------------------------- data files


def fetch_data_file(manifest: Manifest, data: DataFile, s3: S3ClientFactory, workdir: Path) -> Path:
    """A local, MD5-verified copy of one data file (downloaded into ``workdir`` if in S3).

    The MD5 is checked before any row is read, so a damaged file never sends a message.
    """
    if manifest.data_bucket is None:
        assert manifest.local_dir is not None
        path = _find_local(manifest.local_dir, data.key)
        if path is None:
            raise InventoryError(
                f"data file {data.key} listed in {manifest.location} is missing: copy the whole "
                "inventory folder (data/ and the dated report folder) or point at s3://"
            )
        md5 = _md5_of(path)
        where = str(path)
    else:
        uri = S3Uri(manifest.data_bucket, data.key)
        path = workdir / PurePosixPath(data.key).name
        md5 = _download(s3(), uri, path)
        where = str(uri)
    if md5 != data.md5:
        raise InventoryError(
            f"data file {where}: MD5 {md5} does not match the manifest's {data.md5}; the file is "
            "damaged or from another report — fetch the report again"
        )
    return path


def _find_local(base: Path, key: str) -> Path | None:
    """Find ``key`` (a path in the destination bucket) in a downloaded copy of the report.

    Tries the key's trailing path parts (``data/x.csv.gz``, then ``x.csv.gz``) next to the
    manifest and up to four folders above it; the MD5 check catches a wrong match.
    """
    parts = PurePosixPath(key).parts
    for ancestor in [base, *list(base.parents)[:4]]:
        for i in range(len(parts)):
            candidate = ancestor.joinpath(*parts[i:])
            if candidate.is_file():
                return candidate
    return None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(s3_client: Any, uri: S3Uri, dest: Path) -> str:
    """Stream an object to ``dest`` computing its MD5 on the way."""
    try:
        body = s3_client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise InventoryError(
                f"data file {uri} listed in the manifest does not exist; the report may have "
                "expired — use a newer one ('latest')"
            ) from exc
        raise _s3_error(exc, str(uri)) from exc
    digest = hashlib.md5()
    with dest.open("wb") as out:
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- rows


class RowReader(Protocol):
    """Rows of one input, with how far through it we are (0..1) for the ETA."""

    def rows(self, start: int) -> Iterator[InventoryRow]: ...

    def fraction(self) -> float: ...

    def close(self) -> None: ...


def open_rows(manifest: Manifest, path: Path, name: str) -> RowReader:
    """A reader for one verified data file in the manifest's format."""
    if manifest.file_format == "CSV":
        return CsvGzRows(path, manifest.file_schema, name)
    if manifest.file_format == "Parquet":
        return ArrowRows(path, name, "Parquet")
    return ArrowRows(path, name, "ORC")


_ROW_COLUMNS = (
    "key",
    "size",
    "etag",
    "versionid",
    "islatest",
    "isdeletemarker",
    "lastmodifieddate",
)
"""The normalised columns an :class:`InventoryRow` is made of, in its field order."""


class CsvGzRows:
    """Rows of a gzip CSV data file (no header; columns in ``fileSchema`` order)."""

    def __init__(self, path: Path, schema: Sequence[str], name: str) -> None:
        self.name = name
        self._columns = {normalise_column(c): i for i, c in enumerate(schema)}
        self._width = len(schema)
        self._raw = path.open("rb")
        self._size = max(1, path.stat().st_size)

    def fraction(self) -> float:
        return min(1.0, self._raw.tell() / self._size) if not self._raw.closed else 1.0

    def close(self) -> None:
        self._raw.close()

    def rows(self, start: int = 0) -> Iterator[InventoryRow]:
        width = self._width
        # One C-level pick per row; a column the schema lacks reads the "" appended at
        # index ``width``, which the conversions below turn into its default.
        pick = itemgetter(*(self._columns.get(c, width) for c in _ROW_COLUMNS))
        new_row = tuple.__new__
        text = io.TextIOWrapper(gzip.GzipFile(fileobj=self._raw), encoding="utf-8", newline="")
        n = start
        try:
            for n, fields in enumerate(islice(csv.reader(text), start, None), start + 1):
                if len(fields) != width:
                    raise InventoryError(
                        f"data file {self.name} row {n}: {len(fields)} columns, but fileSchema "
                        f"has {width}; the file does not belong to this manifest"
                    )
                fields.append("")
                key, size, etag, version, latest, deleted, modified = pick(fields)
                if "%" in key or "+" in key:
                    key = unquote_plus(key)
                yield new_row(
                    InventoryRow,
                    (
                        key,
                        int(size) if size else None,
                        etag or None,
                        version or None,
                        latest != "false",
                        deleted == "true",
                        modified or None,
                    ),
                )
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise InventoryError(
                f"data file {self.name} is not valid gzip near row {n + 1} ({exc}); "
                "fetch the report again"
            ) from exc
        except UnicodeDecodeError as exc:
            raise InventoryError(f"data file {self.name} row {n + 1}: not UTF-8 ({exc})") from exc
        except (csv.Error, ValueError) as exc:
            raise InventoryError(f"data file {self.name} row {n + 1}: {exc}") from exc


class ArrowRows:
    """Rows of a Parquet or ORC data file, read one row group / stripe at a time."""

    def __init__(self, path: Path, name: str, fmt: str) -> None:
        import pyarrow as pa

        self.name = name
        self._done = 0
        try:
            if fmt == "Parquet":
                import pyarrow.parquet as pq

                self._pq = pq.ParquetFile(str(path))
                names = self._pq.schema_arrow.names
                self._total = self._pq.metadata.num_rows
                self._orc = None
            else:
                import pyarrow.orc as orc

                self._orc = orc.ORCFile(str(path))
                names = self._orc.schema.names
                self._total = self._orc.nrows
        except (pa.ArrowException, OSError) as exc:
            raise InventoryError(f"data file {name}: not a readable {fmt} file ({exc})") from exc
        self._fmt = fmt
        actual = {normalise_column(n): n for n in names}
        if "key" not in actual:
            raise InventoryError(f"data file {name}: no 'key' column (columns: {', '.join(names)})")
        self._columns = [actual[c] for c in _ROW_COLUMNS if c in actual]
        self._wanted = [c if c in actual else None for c in _ROW_COLUMNS]
        self._pa = pa

    def fraction(self) -> float:
        return min(1.0, self._done / self._total) if self._total else 1.0

    def close(self) -> None:
        if self._orc is None:
            self._pq.close()

    def _batches(self) -> Iterator[Any]:
        if self._orc is None:
            yield from self._pq.iter_batches(batch_size=_ARROW_BATCH_ROWS, columns=self._columns)
        else:
            for i in range(self._orc.nstripes):
                yield self._orc.read_stripe(i, columns=self._columns)

    def rows(self, start: int = 0) -> Iterator[InventoryRow]:
        try:
            for batch in self._batches():
                count = batch.num_rows
                if self._done + count <= start:
                    self._done += count
                    continue
                by_name = {
                    normalise_column(n): batch.column(i).to_pylist()
                    for i, n in enumerate(batch.schema.names)
                }
                none: list[Any] = [None] * count
                columns: list[list[Any]] = [
                    by_name[c] if c is not None else none for c in self._wanted
                ]
                keys, sizes, etags, versions, latest, deleted, modified = columns
                for i in range(max(0, start - self._done), count):
                    yield InventoryRow(
                        keys[i],
                        sizes[i],
                        etags[i] or None,
                        versions[i] or None,
                        latest[i] is not False,
                        deleted[i] is True,
                        modified[i],
                    )
                self._done += count
        except self._pa.ArrowException as exc:
            raise InventoryError(f"data file {self.name}: cannot read {self._fmt} ({exc})") from exc


# --------------------------------------------------------------------------- listing fallback


class ListingRows:
    """Rows from ListObjectsV2, for a bucket with no inventory report yet.

    Resuming starts after the last acknowledged key (``StartAfter``), as the listing is
    in key order; ``fraction`` is unknown (0) because the total is unknown.
    """

    def __init__(self, s3_client: Any, uri: S3Uri, start_after: str | None) -> None:
        self.name = str(uri)
        self._s3 = s3_client
        self._uri = uri
        self._start_after = start_after

    def fraction(self) -> float:
        return 0.0

    def close(self) -> None:
        return None

    def rows(self, start: int = 0) -> Iterator[InventoryRow]:
        kwargs: dict[str, Any] = {"Bucket": self._uri.bucket, "Prefix": self._uri.key}
        if self._start_after:
            kwargs["StartAfter"] = self._start_after
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
                for obj in page.get("Contents") or []:
                    yield InventoryRow(
                        str(obj["Key"]),
                        int(obj["Size"]),
                        str(obj.get("ETag", "")).strip('"') or None,
                        None,
                        True,
                        False,
                        obj.get("LastModified"),
                    )
        except ClientError as exc:
            raise _s3_error(exc, self.name) from exc


# --------------------------------------------------------------------------- S3 helpers


def _get_bytes(s3_client: Any, uri: S3Uri, what: str | None) -> bytes | None:
    """The object's bytes; None if missing and ``what`` is None (optional object)."""
    try:
        return bytes(s3_client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read())
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404") and what is None:
            return None
        if error_code(exc) in ("NoSuchKey", "404"):
            raise InventoryError(f"{what} {uri}: no such object; check the path") from exc
        raise _s3_error(exc, str(uri)) from exc


def _s3_error(exc: ClientError, where: str) -> InventoryError:
    code = error_code(exc)
    if code == "NoSuchBucket":
        return InventoryError(f"{where}: bucket does not exist (check the name and --region)")
    return InventoryError(f"{where}: {describe_aws_error(exc)}")
