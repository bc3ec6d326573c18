"""Backfill progress that survives Ctrl-C and kill -9: a local file or an S3 object.

The checkpoint holds, per input (a data file of the manifest, or the listing), how
many rows are done (every message for them acknowledged by SQS) and whether the
input is finished. It is only ever replaced whole: a local file is written to a
temporary name, flushed and renamed over the old one (``os.replace`` is atomic), and
an S3 object is replaced by a single PUT, so a crash leaves the old or the new
checkpoint, never half of one.

A checkpoint belongs to one input (the manifest's SHA-256, or the listing URI) and
one set of filters; resuming anything else would skip rows that were never sent, so
it is refused unless the operator asks for ``--restart``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_object
from imgsearch.s3uri import is_s3_uri, parse_s3_uri
from scripts.backfill.errors import CheckpointError
from scripts.backfill.manifest import S3ClientFactory
from scripts.common.errors import describe_aws_error

FORMAT_VERSION = 1


@dataclass
class InputProgress:
    """How far one input is acknowledged."""

    rows: int = 0
    """Rows (selected or skipped) below which every message was accepted by SQS."""
    done: bool = False
    after_key: str | None = None
    """The key of row ``rows`` - 1; the listing resumes after it."""


@dataclass
class Checkpoint:
    run_id: str
    """What is being backfilled: ``manifest:<sha256>`` or ``listing:s3://...``."""
    source: str
    """Human-readable location of the input."""
    filters: dict[str, Any]
    inputs: dict[str, InputProgress] = field(default_factory=dict)
    complete: bool = False
    sent: int = 0
    """Messages accepted by SQS over all runs of this checkpoint."""
    rejected: int = 0
    version: int = FORMAT_VERSION

    def progress(self, name: str) -> InputProgress:
        return self.inputs.setdefault(name, InputProgress())

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: str) -> Checkpoint:
        try:
            data = json.loads(text)
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('version')!r}")
            data["inputs"] = {k: InputProgress(**v) for k, v in data.get("inputs", {}).items()}
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as exc:
            raise CheckpointError(
                f"checkpoint {where} is not readable ({exc}); pass --restart to start over "
                "or --checkpoint to use another file"
            ) from exc

    def check_belongs(self, run_id: str, filters: dict[str, Any], where: str) -> None:
        """Refuse to resume a different input or different filters (would leave gaps)."""
        if self.run_id != run_id:
            raise CheckpointError(
                f"checkpoint {where} is for another input ({self.source}); pass --restart to "
                "start over, or --checkpoint to keep both"
            )
        if self.filters != filters:
            changed = sorted(
                k for k in {*self.filters, *filters} if self.filters.get(k) != filters.get(k)
            )
            raise CheckpointError(
                f"checkpoint {where} was written with other filters ({', '.join(changed)}); run "
                "with the same filters, or pass --restart"
            )


class CheckpointStore(Protocol):
    location: str

    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint, *, durable: bool = False) -> None: ...


class LocalCheckpointStore:
    """A JSON file replaced atomically (temp file + rename).

    The rename alone survives the process being killed (the page cache outlives it);
    ``durable`` saves also fsync, so the last save of a run survives a power cut too.
    Saving after every acknowledged batch without fsync costs tens of microseconds.
    A kill between writing the temporary file and the rename leaves that file behind:
    the first save of the next run removes such leftovers (``<name>.<random>.tmp``, as
    ``mkstemp`` names them, and nothing else).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._swept = False
        self._leftover = re.compile(re.escape(path.name) + r"\.[A-Za-z0-9_]{8}\.tmp")

    def _sweep(self, directory: Path) -> None:
        """Remove temporary files an earlier run was killed before renaming."""
        self._swept = True
        for stale in directory.glob(glob_escape(self.path.name) + ".*.tmp"):
            if self._leftover.fullmatch(stale.name):
                stale.unlink(missing_ok=True)

    def load(self) -> Checkpoint | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: {exc.strerror or exc}") from exc
        return Checkpoint.from_json(text, self.location)

    def save(self, checkpoint: Checkpoint, *, durable: bool = False) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._sweep(directory)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(checkpoint.to_json())
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot write ({exc})") from exc


class S3CheckpointStore:
    """A JSON object; a PUT replaces it whole (S3 never shows half an object)."""

    def __init__(self, s3: S3ClientFactory, bucket: str, key: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.location = f"s3://{bucket}/{key}"

    def load(self) -> Checkpoint | None:
        try:
            body = self.s3().get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            if is_missing_object(exc):
                return None
            raise CheckpointError(f"checkpoint {self.location}: {describe_aws_error(exc)}") from exc
        return Checkpoint.from_json(body.decode("utf-8"), self.location)

    def save(self, checkpoint: Checkpoint, *, durable: bool = False) -> None:
        try:
            self.s3().put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=checkpoint.to_json().encode("utf-8"),
                ContentType="application/json",
            )
        except ClientError as exc:
            raise CheckpointError(f"checkpoint {self.location}: {describe_aws_error(exc)}") from exc


def open_store(where: str, s3: S3ClientFactory) -> CheckpointStore:
    """``s3://bucket/key`` or a local path."""
    if is_s3_uri(where):
        uri = parse_s3_uri(where, "--checkpoint")
        if not uri.key or uri.key.endswith("/"):
            raise CheckpointError(
                f"--checkpoint {where}: name an object, e.g. s3://bucket/backfill.json"
            )
        return S3CheckpointStore(s3, uri.bucket, uri.key)
    return LocalCheckpointStore(Path(where).expanduser())
