"""The embedder's decisions: how one message brings the index to the bucket's current state.

S3 delivers events at least once and in no guaranteed order, and the backfill races
live events, so a message is only a hint that ``bucket/key`` may have changed. Each
message therefore converges on the object *as it is now*:

1. A ``delete`` message, or one without an ETag: ``HeadObject``. Gone (404) -> delete
   the vector (``deleted``). Still there (re-uploaded) -> continue as an upsert of the
   current version; a delete never removes the vector of an object that exists.
2. ``GetVectors`` the deterministic key: if the stored ``etag`` (and ``model_id``)
   equal the object's -> ``unchanged``. No S3 read, no Bedrock call: re-running a
   backfill over an indexed bucket costs one ``GetVectors`` per object. If that vector
   lacks a metadata key written since (``folders``, the epochs), it is rewritten from
   its stored data instead (``metadata_upgraded``, ``imgsearch.upgrade``): one more
   ``GetVectors``, a ``HeadObject`` for LastModified, still no Bedrock call.
3. ``GetObject`` with ``IfMatch`` = that ETag. ``NoSuchKey`` -> gone, as in (1).
   ``PreconditionFailed`` -> the object was overwritten after this message was sent:
   ``stale_skipped`` (the newer version's own event brings it in).
4. Sniff, check size and format, embed, ``PutVectors`` -> ``embedded``.

A permanent failure that the local checks find in the *current* object's bytes
(empty, corrupt, truncated, unsupported, too large, archived) also deletes a vector
stored for an earlier version: that vector describes content the bucket no longer
has. A model's answer never does: it may be about the deployment, not the image.

This module holds the pure parts of those decisions; ``imgsearch.ingest`` does the I/O
for one message, ``imgsearch.batch`` schedules a batch and writes its vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from imgsearch.aws_errors import is_not_found_code
from imgsearch.models import ModelSpec

# Stable machine reasons owned by this module (never rename).
INVALID_MESSAGE = "invalid_message"
ARCHIVED = "archived"
S3_ERROR = "s3_error"
S3_ACCESS_DENIED = "s3_access_denied"
S3VECTORS_ERROR = "s3vectors_error"
PUT_VECTORS_FAILED = "put_vectors_failed"
DEADLINE_EXCEEDED = "deadline_exceeded"
GROUP_BLOCKED = "earlier_message_in_group_failed"
UNEXPECTED_ERROR = "unexpected_error"

S3Verdict = Literal["gone", "stale", "archived", "empty", "transient"]


def normalize_etag(value: str | None) -> str | None:
    """ETags without quotes: S3 APIs quote them, event notifications do not."""
    if not value:
        return None
    return value.strip().strip('"') or None


def is_unchanged(stored_metadata: Mapping[str, Any] | None, etag: str, model_id: str) -> bool:
    """True if the stored vector was made from this ETag by this model."""
    if not stored_metadata:
        return False
    if normalize_etag(str(stored_metadata.get("etag") or "")) != etag:
        return False
    stored_model = stored_metadata.get("model_id")
    return stored_model is None or stored_model == model_id


def read_limit(size: int | None, model: ModelSpec, header_bytes: int) -> int:
    """How many leading bytes of the object to read.

    Whole objects up to the inline limit (they go to Bedrock as bytes); only a header
    prefix of larger ones (they go by S3 location, the header is for sniffing). An
    unknown size reads at most the inline limit, so a huge object is never pulled
    into memory.
    """
    if size is not None and size > model.max_inline_image_bytes:
        return header_bytes
    return model.max_inline_image_bytes


def total_size(content_range: str | None, content_length: int) -> int:
    """Object size from a ranged GET (``Content-Range: bytes 0-99/12345``)."""
    if content_range and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    return content_length


def classify_s3_error(code: str, status: int) -> tuple[S3Verdict, str]:
    """What a failed ``HeadObject``/``GetObject`` means for the message, and its reason."""
    if is_not_found_code(code, status):
        return "gone", "gone"
    if code == "PreconditionFailed" or status == 412:
        return "stale", "stale"
    if code == "InvalidObjectState":
        return "archived", ARCHIVED
    if code == "InvalidRange" or status == 416:
        return "empty", "empty"
    if code in ("AccessDenied", "403") or status == 403:
        return "transient", S3_ACCESS_DENIED
    return "transient", S3_ERROR


def image_route(total: int, complete: bool, model: ModelSpec) -> Literal["inline", "s3"]:
    """Send the bytes inline when we hold the whole object and it fits the body."""
    if complete and total <= model.max_inline_image_bytes:
        return "inline"
    return "s3"
