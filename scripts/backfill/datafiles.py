"""An inventory report's data files: found, MD5-checked, and (from S3) downloaded.

Two checks guard the rows. :func:`verify_data_files` is the pre-pass: it streams every
data file through MD5 before the first message is sent, so a damaged file anywhere in
the report stops the run before any row of it (or of the files before it) is queued.
:func:`fetch_data_file` checks each file again when its turn comes, because that copy
is the one whose rows are read. Both stream in 1 MiB chunks: memory stays flat.

A local copy of a report is read only inside its ``<config-id>`` folder (the one
holding ``data/`` and the dated folders: see :func:`_find_local`), never through a link
that leads elsewhere; keys that are absolute or climb with ``..`` are refused when the
manifest is parsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_object
from imgsearch.s3uri import S3Uri
from scripts.backfill.errors import InventoryError
from scripts.backfill.manifest import DataFile, Manifest, S3ClientFactory, s3_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CHUNK = 1024 * 1024


def fetch_data_file(manifest: Manifest, data: DataFile, s3: S3ClientFactory, workdir: Path) -> Path:
    """A local, MD5-verified copy of one data file (downloaded into ``workdir`` if in S3).

    The MD5 is checked before any row is read, so a damaged file never sends a message.
    """
    if manifest.data_bucket is None:
        path = _local_path(manifest, data)
        _check_md5(_md5_of(path), data, str(path))
        return path
    uri = S3Uri(manifest.data_bucket, data.key)
    path = workdir / PurePosixPath(data.key).name
    with path.open("wb") as out:
        md5 = _stream_md5(s3(), uri, out.write)
    _check_md5(md5, data, str(uri))
    return path


def verify_data_files(
    manifest: Manifest,
    s3: S3ClientFactory,
    *,
    skip: Collection[str] = (),
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Check every data file's MD5 (but those in ``skip``) without keeping a copy;
    ``stop`` is asked before each file (the operator's Ctrl-C ends the pre-pass too).

    Raises the same :class:`InventoryError` as :func:`fetch_data_file` would, only
    before anything was sent. An S3 report is read twice this way (here, then when its
    rows are read): ``--no-verify-first`` trades that for sending the earlier files'
    rows before a damaged file is found.
    """
    todo: Iterable[DataFile] = (f for f in manifest.files if f.key not in skip)
    for data in todo:
        if stop():
            return
        if manifest.data_bucket is None:
            path = _local_path(manifest, data)
            _check_md5(_md5_of(path), data, str(path))
        else:
            uri = S3Uri(manifest.data_bucket, data.key)
            _check_md5(_stream_md5(s3(), uri, lambda _chunk: None), data, str(uri))


def _check_md5(md5: str, data: DataFile, where: str) -> None:
    if md5 != data.md5:
        raise InventoryError(
            f"data file {where}: MD5 {md5} does not match the manifest's {data.md5}; the file is "
            "damaged or from another report — fetch the report again"
        )


def _local_path(manifest: Manifest, data: DataFile) -> Path:
    assert manifest.local_dir is not None
    path = _find_local(manifest.local_dir, data.key)
    if path is None:
        raise InventoryError(
            f"data file {data.key} listed in {manifest.location} is missing: copy the whole "
            "inventory folder (data/ and the dated report folder) or point at s3://"
        )
    return path


def _find_local(manifest_dir: Path, key: str) -> Path | None:
    """Find ``key`` (a path in the destination bucket) in a downloaded copy of the report.

    S3 writes ``<config-id>/data/<name>`` next to ``<config-id>/<date>/manifest.json``, so
    a copy of the ``<config-id>`` folder holds the file at ``data/<name>``; a copy of the
    dated folder alone may hold it beside the manifest or in a ``data/`` there. Nothing
    else is tried, and a candidate counts only if it really lies under the
    ``<config-id>`` folder (no link out of the copy): the key's other parts never lead
    anywhere, so a manifest cannot make the backfill read (and print the MD5 of) a file
    outside its report. The key is already relative and ``..``-free
    (:func:`scripts.backfill.manifest.parse_manifest`); the MD5 check catches a wrong match.
    """
    name = PurePosixPath(key).name
    root = manifest_dir.parent
    inside = root.resolve()
    for candidate in (root / "data" / name, manifest_dir / name, manifest_dir / "data" / name):
        if candidate.is_file() and candidate.resolve().is_relative_to(inside):
            return candidate
    return None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stream_md5(s3_client: S3Client, uri: S3Uri, sink: Callable[[bytes], object]) -> str:
    """Stream an object through MD5 (and ``sink``, e.g. a file's ``write``)."""
    try:
        body = s3_client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    except ClientError as exc:
        if is_missing_object(exc):
            raise InventoryError(
                f"data file {uri} listed in the manifest does not exist; the report may have "
                "expired — use a newer one ('latest')"
            ) from exc
        raise s3_error(exc, str(uri)) from exc
    digest = hashlib.md5()
    for chunk in body.iter_chunks(_CHUNK):
        digest.update(chunk)
        sink(chunk)
    return digest.hexdigest()


__all__ = ["fetch_data_file", "verify_data_files"]
