"""Queue messages: one per object event, shared by the router and the backfill script.

A message says "object ``bucket/key`` changed (``upsert``) or went away (``delete``)".
The router builds them from S3 event records, the backfill script from inventory rows;
both go through :func:`to_send_entry`, so a live event and a backfill of the same object
share a ``MessageGroupId`` (one object's messages are processed in order) and the
embedder's stored-ETag check makes the later of the two free (see :func:`dedup_id`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import reprlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import unquote_plus

SCHEMA_VERSION = 1

Kind = Literal["upsert", "delete"]
Origin = Literal["event", "backfill"]
_KINDS: tuple[str, ...] = ("upsert", "delete")
_ORIGINS: tuple[str, ...] = ("event", "backfill")


KEY_MAX_BYTES = 1024
"""S3's limit on an object key, in UTF-8 bytes."""

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
"""Error messages quote a field's value at most this long: a body may be megabytes."""


class MessageError(ValueError):
    """A message body that is not a valid pipeline message; names the bad field."""


class ObjectNameError(MessageError):
    """A bucket name or key S3 would refuse: no request about it can ever succeed."""


class UnparseableBody(MessageError):
    """A body that is not JSON at all; ``cause`` names why (``RecursionError``, ...).

    Tools that show bodies (``dlq list``) say "unparseable (cause)" instead of quoting it.
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def check_object_name(bucket: str, key: str) -> None:
    """Raise :class:`ObjectNameError` unless S3 could hold ``key`` in ``bucket``.

    Bucket names follow S3's rules for general purpose buckets (3-63 lowercase letters,
    digits, dots and hyphens; no IP address; no reserved prefix or suffix). Legacy
    us-east-1 names with capitals or underscores are refused too: the pipeline cannot
    index such a bucket. Keys are 1..1024 bytes of UTF-8.
    """
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise ObjectNameError("fields 'bucket' and 'key': expected strings")
    if (
        not _BUCKET_NAME.fullmatch(bucket)
        or ".." in bucket
        or bucket.startswith(_BUCKET_RESERVED_PREFIXES)
        or bucket.endswith(_BUCKET_RESERVED_SUFFIXES)
        or _is_ip_address(bucket)
    ):
        raise ObjectNameError(
            f"field 'bucket': {_short.repr(bucket)} is not an S3 bucket name (3-63 lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ObjectNameError(f"field 'key': not valid Unicode text ({exc.reason})") from exc
    if not 1 <= size <= KEY_MAX_BYTES:
        raise ObjectNameError(
            f"field 'key': {size} bytes of UTF-8; S3 keys are 1..{KEY_MAX_BYTES} bytes"
        )


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ObjectMessage:
    """One object event, as it travels through the FIFO queue."""

    bucket: str
    key: str
    kind: Kind
    origin: Origin
    event_time: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    """S3's per-key ordering token; present on live events only."""

    def __post_init__(self) -> None:
        check_object_name(self.bucket, self.key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_json(self) -> str:
        """The queue body: ASCII (json's default escaping), whatever the key's characters."""
        body = {"v": SCHEMA_VERSION, **asdict(self)}
        return json.dumps({k: v for k, v in body.items() if v is not None}, separators=(",", ":"))


def parse_message(body: str | bytes) -> ObjectMessage:
    """Parse and validate a queue message body; errors name the offending field.

    Raises only :class:`MessageError`, whatever the body: a crafted one (nested
    100,000 deep, megabytes long, not text) must end as one invalid message, never
    as a crashed invocation.
    """
    try:
        data = json.loads(body)
    except Exception as exc:  # RecursionError, UnicodeDecodeError, ...: all mean "not JSON"
        cause = type(exc).__name__
        raise UnparseableBody(f"message body is not JSON: {cause}: {exc}", cause) from exc
    if not isinstance(data, dict):
        raise MessageError("message body: expected a JSON object")
    version = data.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # not True, not 1.0
        raise MessageError(
            f"field 'v': expected schema version {SCHEMA_VERSION}, got {_short.repr(version)}"
        )
    unknown = set(data) - {"v", *ObjectMessage.__dataclass_fields__}
    if unknown:
        raise MessageError(
            f"field {_short.repr(sorted(unknown)[0])}: not part of schema version {SCHEMA_VERSION}"
        )
    for name in ("bucket", "key", "event_time"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise MessageError(f"field {name!r}: required non-empty string")
    if data.get("kind") not in _KINDS:
        raise MessageError(
            f"field 'kind': expected one of {_KINDS}, got {_short.repr(data.get('kind'))}"
        )
    if data.get("origin") not in _ORIGINS:
        raise MessageError(
            f"field 'origin': expected one of {_ORIGINS}, got {_short.repr(data.get('origin'))}"
        )
    size = data.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise MessageError(
            f"field 'size': expected a non-negative integer, got {_short.repr(size)}"
        )
    for name in ("etag", "version_id", "sequencer"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise MessageError(f"field {name!r}: expected a string, got {_short.repr(data[name])}")
    data.pop("v")
    return ObjectMessage(**data)


# --------------------------------------------------------------------------- ids


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def vector_key(bucket: str, key: str) -> str:
    """The object's deterministic vector key: re-processing overwrites, never duplicates."""
    return _digest(bucket, key)


def group_id(bucket: str, key: str, groups: int) -> str:
    """Stable ``MessageGroupId`` spreading objects over ``groups`` groups.

    One object always maps to one group, so its events stay in order; different
    objects spread over many groups, so Lambda can work on them in parallel (a FIFO
    event source runs at most one batch per group at a time).
    """
    if groups < 1:
        raise ValueError("groups must be >= 1")
    return f"g{int(_digest(bucket, key)[:15], 16) % groups:05d}"


def dedup_id(msg: ObjectMessage) -> str:
    """``MessageDeduplicationId`` for a message.

    Every id hashes bucket, key, the object version (ETag first: a versioned bucket's
    current-versions inventory carries no version id) and the kind. Live events also hash
    S3's per-key ``sequencer``, so a redelivered S3 event collapses while two distinct
    events never do: without it, upload, delete and re-upload of the same bytes within
    SQS's five-minute window would drop the re-upload and leave the object without a
    vector (likewise upload A, upload B, upload A again would keep B's vector).

    A backfill row (no sequencer) and a live event for the same version therefore both
    reach the embedder, one after the other in the same message group; the second finds
    the stored vector's ETag current and ends as ``unchanged`` with no Bedrock call.
    Backfill rows sent twice (a resumed run) collapse with each other.
    """
    version = msg.etag or msg.version_id or ""
    if msg.kind == "delete":
        version = msg.version_id or msg.etag or ""
        return _digest(msg.bucket, msg.key, version, msg.sequencer or msg.event_time, "delete")
    return _digest(msg.bucket, msg.key, version, msg.sequencer or "", "upsert")


def to_send_entry(msg: ObjectMessage, groups: int, entry_id: str) -> dict[str, str]:
    """One ``SendMessageBatch`` entry for ``msg``."""
    return {
        "Id": entry_id,
        "MessageBody": msg.to_json(),
        "MessageGroupId": group_id(msg.bucket, msg.key, groups),
        "MessageDeduplicationId": dedup_id(msg),
    }


# --------------------------------------------------------------------------- S3 events


def is_test_event(event: dict[str, Any]) -> bool:
    """``s3:TestEvent`` is sent once when a notification is configured; it is no object."""
    return event.get("Event") == "s3:TestEvent"


def from_s3_record(record: dict[str, Any]) -> ObjectMessage:
    """Build a message from one S3 event notification record.

    S3 URL-encodes keys in events and writes spaces as ``+``; the key is decoded
    here so everything downstream sees the real object key. Any record that is not
    S3's shape (a field missing or of the wrong type: anyone who may invoke the router
    or write its DLQ can send one) raises :class:`MessageError` naming the field, so the
    router skips it as it skips other records it cannot use, and never sends a message
    the embedder would refuse.
    """
    if not isinstance(record, dict):
        raise MessageError(f"S3 event record: expected an object, got {_short.repr(record)}")
    name = _required(record, "eventName", str)
    s3: dict[str, Any] = _required(record, "s3", dict)
    bucket = _required(_required(s3, "bucket", dict), "name", str)
    obj: dict[str, Any] = _required(s3, "object", dict)
    key = unquote_plus(_required(obj, "key", str))
    if name.startswith("ObjectCreated:"):
        kind: Kind = "upsert"
    elif name.startswith(("ObjectRemoved:", "LifecycleExpiration:")):
        # A lifecycle expiry removes the object too, but S3 reports it only as
        # LifecycleExpiration:* (never as ObjectRemoved:*).
        kind = "delete"
    else:
        raise MessageError(
            f"S3 event record: field 'eventName' {_short.repr(name)} is not an object event"
        )
    size = _optional(obj, "size", int)
    if size is not None and size < 0:
        raise MessageError(f"S3 event record: field 'size': {size} is negative")
    etag = _optional(obj, "eTag", str)
    return ObjectMessage(
        bucket=bucket,
        key=key,
        kind=kind,
        origin="event",
        event_time=_optional(record, "eventTime", str) or now_iso(),
        size=size if kind == "upsert" else None,
        etag=(etag.strip('"') or None) if etag else None,
        version_id=_optional(obj, "versionId", str) or None,
        sequencer=_optional(obj, "sequencer", str) or None,
    )


_T = TypeVar("_T")
_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object"}


def _required(parent: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = _optional(parent, name, kind)
    if value is None:
        raise MessageError(f"S3 event record: missing field {name!r}")
    return value


def _optional(parent: dict[str, Any], name: str, kind: type[_T]) -> _T | None:
    """``parent[name]`` if it is a ``kind``, None if absent or null (``true`` is no int)."""
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MessageError(
            f"S3 event record: field {name!r}: expected {_TYPE_NAMES.get(kind, kind.__name__)}, "
            f"got {_short.repr(value)}"
        )
    return value


def for_backfill(
    bucket: str,
    key: str,
    *,
    size: int | None,
    etag: str | None,
    version_id: str | None = None,
    event_time: str | None = None,
) -> ObjectMessage:
    """An ``upsert`` message for an existing object found by the backfill."""
    return ObjectMessage(
        bucket=bucket,
        key=key,
        kind="upsert",
        origin="backfill",
        event_time=event_time or now_iso(),
        size=size,
        etag=etag.strip('"') if etag else None,
        version_id=version_id or None,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
