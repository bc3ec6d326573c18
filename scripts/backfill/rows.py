"""Rows of an inventory input, one at a time: CSV (gzip), Parquet, ORC, or a listing.

Each reader streams its input so memory stays flat however large the inventory is, and
can start at a row (a data file, resumed by row count) or after a key (the listing,
resumed with ``StartAfter``). The data files are verified before they get here
(:func:`scripts.backfill.datafiles.fetch_data_file`).

Only CSV keys are URL-encoded (form encoding: a space is ``+``, a real ``+`` is
``%2B``), so they go through ``unquote_plus``; Parquet and ORC keys are stored as is.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from imgsearch.s3uri import S3Uri
from scripts.backfill.errors import InventoryError
from scripts.backfill.manifest import Manifest, normalise_column, s3_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_ARROW_BATCH_ROWS = 16_384


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
    storage_class: str | None = None
    """``STANDARD``, ``GLACIER``, ...; None if not inventoried."""
    access_tier: str | None = None
    """Intelligent-Tiering's access tier (``ARCHIVE_ACCESS``, ...); None if not inventoried."""


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
    "storageclass",
    "intelligenttieringaccesstier",
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
                key, size, etag, version, latest, deleted, modified, klass, tier = pick(fields)
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
                        klass or None,
                        tier or None,
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
                keys, sizes, etags, versions, latest, deleted, modified, klass, tier = columns
                for i in range(max(0, start - self._done), count):
                    yield InventoryRow(
                        keys[i],
                        sizes[i],
                        etags[i] or None,
                        versions[i] or None,
                        latest[i] is not False,
                        deleted[i] is True,
                        modified[i],
                        klass[i] or None,
                        tier[i] or None,
                    )
                self._done += count
        except self._pa.ArrowException as exc:
            raise InventoryError(f"data file {self.name}: cannot read {self._fmt} ({exc})") from exc


# --------------------------------------------------------------------------- listing fallback


class ListingRows:
    """Rows from ListObjectsV2, for a bucket with no inventory report yet.

    Resuming starts after the last acknowledged key (``StartAfter``), as the listing is
    in key order; ``fraction`` is unknown (0) because the total is unknown. ``owner``:
    the ``ExpectedBucketOwner`` to send (the source bucket's, when known), so another
    account's bucket of that name is refused instead of listed.
    """

    def __init__(
        self, s3_client: S3Client, uri: S3Uri, start_after: str | None, owner: str | None = None
    ) -> None:
        self.name = str(uri)
        self._s3 = s3_client
        self._uri = uri
        self._start_after = start_after
        self._owner = owner

    def fraction(self) -> float:
        return 0.0

    def close(self) -> None:
        return None

    def rows(self, start: int = 0) -> Iterator[InventoryRow]:
        kwargs: dict[str, Any] = {"Bucket": self._uri.bucket, "Prefix": self._uri.key}
        if self._start_after:
            kwargs["StartAfter"] = self._start_after
        if self._owner:
            kwargs["ExpectedBucketOwner"] = self._owner
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
                        obj.get("StorageClass"),
                    )
        except ClientError as exc:
            raise s3_error(exc, self.name) from exc
