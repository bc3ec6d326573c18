"""What a backfill reads: the data files of one inventory report, or one listing.

A :class:`Source` names the run (for the checkpoint), the bucket its rows belong to,
and its inputs; each :class:`Input` opens where its checkpoint says it stopped, so the
run itself never needs to know whether rows come from CSV, Parquet, ORC or ListObjectsV2.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from imgsearch.s3uri import S3Uri
from scripts.backfill.checkpoint import InputProgress
from scripts.backfill.datafiles import fetch_data_file, verify_data_files
from scripts.backfill.manifest import DataFile, Manifest, S3ClientFactory, schema_columns
from scripts.backfill.rows import InventoryRow, ListingRows, RowReader, open_rows

OpenedInput = tuple[RowReader, Iterator[InventoryRow]]
Opener = Callable[[InputProgress, Path], OpenedInput]
"""Opens an input where its checkpoint says it stopped (downloading it into the path)."""
Verifier = Callable[[Collection[str], Callable[[], bool]], None]
"""Checks every input but the named (finished) ones before anything is sent, until the
second argument says stop; raises :class:`scripts.backfill.errors.InventoryError`
naming the first damaged one."""


@dataclass(frozen=True)
class Input:
    """One stream of rows: a data file of the manifest, or the listing."""

    name: str
    """Its key in the checkpoint (the data file's S3 key, or the listing URI)."""
    weight: int
    """Bytes, so the progress bar advances by share of the inventory read."""
    open: Opener


@dataclass(frozen=True)
class Source:
    """What is being backfilled, and how to read it."""

    run_id: str
    description: str
    bucket: str
    inputs: tuple[Input, ...]
    columns: frozenset[str] | None
    """Normalised column names (``lastmodifieddate``, ...); None if the input does not say."""
    format: str
    notes: tuple[str, ...] = ()
    verify: Verifier | None = None
    """The pre-pass over the inputs (an inventory's MD5s); None when there is none."""
    verify_bytes: int = 0
    """What the pre-pass reads, for the operator's note."""


def manifest_source(manifest: Manifest, s3: S3ClientFactory) -> Source:
    """One input per data file, each fetched and MD5-checked only when its turn comes."""

    def opener(data: DataFile) -> Opener:
        def open_input(progress: InputProgress, workdir: Path) -> OpenedInput:
            path = fetch_data_file(manifest, data, s3, workdir)
            reader = open_rows(manifest, path, data.key)
            return reader, reader.rows(progress.rows)

        return open_input

    notes: tuple[str, ...] = ()
    if not manifest.checksum_verified:
        notes = (
            f"no manifest.checksum next to {manifest.location}: the manifest itself is unverified",
        )
    return Source(
        run_id=f"manifest:{manifest.identity}",
        description=manifest.location,
        bucket=manifest.source_bucket,
        inputs=tuple(Input(f.key, f.size, opener(f)) for f in manifest.files),
        columns=schema_columns(manifest),
        format=manifest.file_format,
        notes=notes,
        verify=lambda skip, stop: verify_data_files(manifest, s3, skip=skip, stop=stop),
        verify_bytes=manifest.total_bytes,
    )


def listing_source(uri: S3Uri, s3: S3ClientFactory, owner: str | None = None) -> Source:
    """One input, the ListObjectsV2 listing, resumed after the last acknowledged key;
    ``owner``: the bucket's expected owner (:meth:`SourceBucket.owner_for`), or None."""

    def open_input(progress: InputProgress, workdir: Path) -> OpenedInput:
        reader = ListingRows(s3(), uri, progress.after_key, owner)
        return reader, reader.rows()

    return Source(
        run_id=f"listing:{uri}",
        description=f"listing of {uri}",
        bucket=uri.bucket,
        inputs=(Input(str(uri), 1, open_input),),
        columns=frozenset({"key", "size", "etag", "lastmodifieddate"}),
        format="ListObjectsV2",
    )
