"""``verify``: does the index match the bucket? Objects without vectors, vectors without objects.

Two directions, both by the deterministic vector key (``imgsearch.messages.vector_key``):

* **objects -> vectors**: list the source bucket under the configured prefixes, keep the
  keys the pipeline indexes (:class:`imgsearch.selection.KeySelection`), and look their
  vectors up with ``GetVectors`` (100 per call). No vector = *missing*; a vector made
  from another ETag = *outdated*.
* **vectors -> objects**: with ``--all``, ``ListVectors`` (metadata included) and compare
  with the listing; with ``--sample N``, a page from a random ``ListVectors`` segment
  and a ``HeadObject`` per vector. Object gone = *orphan*; object there but outside
  the configured prefixes/suffixes = *unselected* (reported, not fixed: the embedder
  would re-index an object that still exists).

``--fix`` enqueues the repairs with the router's own message builder and sender
(``imgsearch.messages`` / ``imgsearch.enqueue``): an ``upsert`` per missing or outdated
object, a ``delete`` per orphan (the embedder checks the object is gone, then deletes
the vector), so repairs go through the same convergence as every other change. Repair
upserts carry no ETag: the embedder reads the object's current one, and the message's
deduplication id differs from the object's own upload event, which SQS would otherwise
drop as a duplicate when the repair follows the upload within five minutes.

Memory: ``--all`` holds one 32-byte digest per listed object (about 100 bytes each with
Python's set overhead: ~1 GB for 10 million objects). Use ``--sample`` on larger buckets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_bucket
from imgsearch.config import PipelineConfig
from imgsearch.contract import FAILURE_OUTCOMES
from imgsearch.converge import normalize_etag
from imgsearch.enqueue import send_messages
from imgsearch.limits import LIMITS
from imgsearch.messages import ObjectMessage, for_backfill, now_iso, vector_key
from imgsearch.s3uri import parse_s3_uri
from imgsearch.selection import KeySelection
from imgsearch.vectors import VectorIndex, stored_etag
from scripts.ops.errors import BucketNotFound
from scripts.ops.failure_log import PERMANENT_FAILURE, LastError, LogLookup, iso_to_millis
from scripts.ops.index_listing import LIST_PAGE_MAX, list_vectors, source_of
from scripts.ops.objects import SourceBucket, object_exists

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestPaginateTypeDef
    from mypy_boto3_sqs import SQSClient

RECENT_SECONDS = 900
"""Objects changed this recently may simply still be in the queue."""
LIST_SEGMENTS = 16


@dataclass(frozen=True)
class SourceObject:
    bucket: str
    key: str
    size: int | None
    etag: str | None
    last_modified: str | None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Finding:
    kind: str
    """``missing`` | ``outdated`` | ``orphan`` | ``unselected`` | ``failed``

    ``failed``: no vector because the embedder recorded a permanent failure for this very
    version (corrupt, unsupported, too large): accounted for, not an inconsistency."""
    uri: str | None
    vector_key: str
    detail: str = ""
    recent: bool = False
    size: int | None = None
    etag: str | None = None
    """The object's size and ETag when it exists (for the repair message)."""


@dataclass
class VerifyReport:
    mode: str
    source_bucket: str
    objects_listed: int = 0
    objects_checked: int = 0
    vectors_checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    fixes_sent: int = 0
    fixes_failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure_lookups: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def clean(self) -> bool:
        """No inconsistency (permanent failures are recorded outcomes, not drift)."""
        return all(f.kind == "failed" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["counts"] = {k: self.count(k) for k in FINDING_KINDS}
        return out


FINDING_KINDS = ("missing", "outdated", "orphan", "unselected", "failed")
MAY_BE_QUEUED = frozenset({"missing", "outdated"})
"""Findings a message still in the queue would resolve (the "changed recently" note)."""
FAILURE_LOOKUPS_MAX = 200
"""Missing objects checked against the embedder's logs per run (one log query each)."""


# --------------------------------------------------------------------------- listing


def list_objects(
    s3: S3Client, bucket: str, selection: KeySelection, *, owner: str | None = None
) -> Iterator[SourceObject]:
    """Every object the pipeline indexes, by prefix (each configured prefix listed once);
    ``owner``: the bucket's expected owner (``ExpectedBucketOwner``), when known."""
    prefixes = sorted(set(selection.prefixes))
    # "" covers everything; otherwise drop prefixes nested in another listed one.
    if "" in prefixes:
        prefixes = [""]
    else:
        prefixes = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        request: ListObjectsV2RequestPaginateTypeDef = {"Bucket": bucket, "Prefix": prefix}
        if owner:
            request["ExpectedBucketOwner"] = owner
        try:
            for page in paginator.paginate(**request):
                for obj in page.get("Contents") or []:
                    if selection.matches(obj["Key"]):
                        modified = obj.get("LastModified")
                        yield SourceObject(
                            bucket=bucket,
                            key=obj["Key"],
                            size=obj.get("Size"),
                            etag=normalize_etag(obj.get("ETag")),
                            last_modified=modified.isoformat() if modified else None,
                        )
        except ClientError as exc:
            if is_missing_bucket(exc):
                raise BucketNotFound(
                    f"source bucket {bucket!r} does not exist: check --source-bucket or the "
                    "stack's SourceBucketName output"
                ) from exc
            raise


def reservoir(
    items: Iterator[SourceObject], n: int, rng: random.Random
) -> tuple[list[SourceObject], int]:
    """A uniform sample of ``n`` items from a stream of unknown length, and its length."""
    sample: list[SourceObject] = []
    seen = 0
    for item in items:
        seen += 1
        if len(sample) < n:
            sample.append(item)
        else:
            j = rng.randrange(seen)
            if j < n:
                sample[j] = item
    return sample, seen


def _is_recent(obj: SourceObject, now: datetime) -> bool:
    if not obj.last_modified:
        return False
    try:
        modified = datetime.fromisoformat(obj.last_modified)
    except ValueError:
        return False
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return now - modified < timedelta(seconds=RECENT_SECONDS)


# --------------------------------------------------------------------------- checks


def check_objects(
    objects: list[SourceObject],
    index: VectorIndex,
    report: VerifyReport,
    now: datetime,
    failures: LogLookup | None = None,
) -> dict[str, SourceObject]:
    """Missing and outdated vectors for ``objects``; returns them by vector key.

    With ``failures`` (the embedder's logs), a missing vector whose object version the
    embedder last reported as a ``permanent_failure`` is a ``failed`` finding instead, and
    a ``missing`` one whose last attempt failed otherwise (retried, or in the DLQ) says why
    (e.g. S3's AccessDenied naming ``source_kms_key_arn``): what to fix, not "no vector".
    """
    by_key = {vector_key(o.bucket, o.key): o for o in objects}
    keys = list(by_key)
    for start in range(0, len(keys), LIMITS.get_vectors_max_keys):
        chunk = keys[start : start + LIMITS.get_vectors_max_keys]
        stored = index.get(chunk)
        for vkey in chunk:
            obj = by_key[vkey]
            entry = stored.get(vkey)
            if entry is None:
                kind, detail = _why_missing(failures, obj, vkey, report)
                report.findings.append(
                    Finding(kind, obj.uri, vkey, detail, _is_recent(obj, now), obj.size, obj.etag)
                )
            elif obj.etag and normalize_etag(stored_etag(entry)) not in (None, obj.etag):
                report.findings.append(
                    Finding(
                        "outdated",
                        obj.uri,
                        vkey,
                        f"vector made from ETag {stored_etag(entry)}, object has {obj.etag}",
                        _is_recent(obj, now),
                        obj.size,
                        obj.etag,
                    )
                )
    report.objects_checked += len(objects)
    return by_key


def _why_missing(
    failures: LogLookup | None, obj: SourceObject, vkey: str, report: VerifyReport
) -> tuple[str, str]:
    """(kind, detail) of an object without a vector, from its last outcome line.

    ``failed`` when the embedder last reported a permanent failure for this very version;
    else ``missing``, with the last failure's reason and detail when there is one. A line
    without an ETag (it failed before the object was read, e.g. HeadObject refused) is
    about the key, so it explains a missing vector but records no version's failure.
    """
    last = _last_outcome(failures, obj, vkey, report)
    if last is None or last.outcome not in FAILURE_OUTCOMES:
        return "missing", "no vector"
    line_etag = normalize_etag(last.etag)
    if line_etag is not None and line_etag != obj.etag:
        return "missing", "no vector"  # about another version of the object
    why = (last.reason or "unknown") + (f" ({last.detail})" if last.detail else "")
    if last.outcome == PERMANENT_FAILURE and line_etag is not None:
        return "failed", f"permanent failure: {why}"
    return "missing", f"no vector; the last attempt failed: {why}"


def _last_outcome(
    failures: LogLookup | None, obj: SourceObject, vkey: str, report: VerifyReport
) -> LastError | None:
    """The embedder's last outcome line for the object (bounded: one lookup each)."""
    if failures is None or not obj.etag:
        return None
    if report.failure_lookups >= FAILURE_LOOKUPS_MAX:
        if report.failure_lookups == FAILURE_LOOKUPS_MAX:
            report.failure_lookups += 1
            report.notes.append(
                f"only the first {FAILURE_LOOKUPS_MAX} missing objects were checked against "
                "the embedder's logs; others may be recorded failures"
            )
        return None
    report.failure_lookups += 1
    return failures.last_outcome(vkey, iso_to_millis(obj.last_modified))


def check_vectors_all(
    index: VectorIndex,
    listed: set[bytes],
    source_bucket: str,
    selection: KeySelection,
    report: VerifyReport,
) -> None:
    """Orphans by comparing every vector with the full listing (``--all``)."""
    for vector in list_vectors(index):
        report.vectors_checked += 1
        vkey = str(vector["key"])
        try:
            digest = bytes.fromhex(vkey)
        except ValueError:
            digest = b""
        if digest in listed:
            continue
        bucket, key = source_of(dict(vector.get("metadata") or {}))
        uri = f"s3://{bucket}/{key}" if bucket and key else None
        if bucket == source_bucket and key is not None and not selection.matches(key):
            report.findings.append(
                Finding("unselected", uri, vkey, "object key is outside the configured selection")
            )
        else:
            report.findings.append(Finding("orphan", uri, vkey, "no such object in the listing"))


def check_vectors_sample(
    s3: S3Client,
    index: VectorIndex,
    n: int,
    selection: KeySelection,
    report: VerifyReport,
    rng: random.Random,
    source: SourceBucket | None = None,
) -> None:
    """Orphans among ``n`` vectors from a random ListVectors segment (``--sample``)."""
    segment = (LIST_SEGMENTS, rng.randrange(LIST_SEGMENTS))
    vectors = list(list_vectors(index, segment=segment, limit=n))
    if len(vectors) < n:  # small index: the whole of it is the sample
        vectors = list(list_vectors(index, limit=n))
    for vector in vectors:
        report.vectors_checked += 1
        vkey = str(vector["key"])
        bucket, key = source_of(dict(vector.get("metadata") or {}))
        if not bucket or not key:
            report.findings.append(
                Finding("orphan", None, vkey, "vector metadata names no source object")
            )
            continue
        uri = f"s3://{bucket}/{key}"
        owner = source.owner_for(bucket) if source is not None else None
        if not object_exists(s3, bucket, key, owner=owner):
            report.findings.append(Finding("orphan", uri, vkey, "the object is gone"))
            continue
        if not selection.matches(key):
            report.findings.append(
                Finding("unselected", uri, vkey, "object key is outside the configured selection")
            )


def verify(
    cfg: PipelineConfig,
    *,
    s3: S3Client,
    index: VectorIndex,
    source_bucket: str,
    sample: int | None,
    rng: random.Random | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    failures: LogLookup | None = None,
) -> VerifyReport:
    """Check both directions; ``sample`` None means ``--all``.

    Calls on ``source_bucket`` name the deployment's ``source_bucket_owner`` when known.
    """
    rng = rng or random.Random()
    now = now or datetime.now(UTC)
    selection = KeySelection.from_config(cfg)
    source = SourceBucket(source_bucket, cfg.source_bucket_owner or None)
    report = VerifyReport(
        mode="all" if sample is None else f"sample of {sample}", source_bucket=source_bucket
    )
    stream = list_objects(s3, source_bucket, selection, owner=source.owner)
    if sample is None:
        listed: set[bytes] = set()
        batch: list[SourceObject] = []
        for obj in stream:
            report.objects_listed += 1
            batch.append(obj)
            if len(batch) >= LIST_PAGE_MAX:
                checked = check_objects(batch, index, report, now, failures)
                listed.update(bytes.fromhex(k) for k in checked)
                batch = []
                if progress is not None:
                    progress(f"checked {report.objects_checked} objects")
        checked = check_objects(batch, index, report, now, failures)
        listed.update(bytes.fromhex(k) for k in checked)
        check_vectors_all(index, listed, source_bucket, selection, report)
    else:
        chosen, report.objects_listed = reservoir(stream, sample, rng)
        check_objects(chosen, index, report, now, failures)
        check_vectors_sample(s3, index, sample, selection, report, rng, source)
    # Only a missing or outdated vector can still be on its way; a recorded failure, an
    # orphan or an unselected vector is final whenever its object changed.
    recent = sum(1 for f in report.findings if f.recent and f.kind in MAY_BE_QUEUED)
    if recent:
        report.notes.append(
            f"{recent} missing or outdated vector(s) belong to objects changed in the last "
            f"{RECENT_SECONDS // 60} min: they may still be in the queue"
        )
    return report


def fix(
    cfg: PipelineConfig,
    report: VerifyReport,
    *,
    sqs: SQSClient,
    queue_url: str,
    retry_failed: bool = False,
) -> None:
    """Enqueue an upsert per missing/outdated object and a delete per orphan.

    Recorded permanent failures are retried only with ``retry_failed``: the same bytes
    would fail the same way, costing an S3 read each run.
    """
    messages: list[ObjectMessage] = []
    repair = ("missing", "outdated", "failed") if retry_failed else ("missing", "outdated")
    for finding in report.findings:
        if finding.uri is None or finding.kind == "unselected":
            continue
        source = parse_s3_uri(finding.uri)
        bucket, key = source.bucket, source.key
        if finding.kind in repair:
            # No ETag: the upsert converges on whatever the object is when it is
            # processed, and its deduplication id differs from the object's own event
            # (which SQS would otherwise drop as a duplicate for five minutes).
            messages.append(for_backfill(bucket, key, size=finding.size, etag=None))
        elif finding.kind == "orphan":
            messages.append(
                ObjectMessage(
                    bucket=bucket, key=key, kind="delete", origin="backfill", event_time=now_iso()
                )
            )
    if not messages:
        return
    result = send_messages(sqs, queue_url, messages, groups=cfg.message_groups)
    report.fixes_sent = result.sent
    report.fixes_failed = [f"{f['Code']}: {f['Message']}" for f in result.failed]
    skipped = report.count("unselected")
    if skipped:
        report.notes.append(
            f"{skipped} unselected vector(s) not fixed: their objects exist outside the "
            "configured prefixes/suffixes; remove them with `imgsearch delete`"
        )


__all__ = [
    "Finding",
    "SourceObject",
    "VerifyReport",
    "check_objects",
    "fix",
    "list_objects",
    "reservoir",
    "verify",
]
