"""The message's object in the source bucket: HeadObject and the ETag-pinned GetObject.

Both name the source bucket's expected owner, when set, and turn S3's answer into what
:class:`~imgsearch.ingest.ObjectConverger` needs: the object's facts, ``None`` when it
is gone, or the message's end (a transient failure, a name botocore refuses, a newer
version). Bytes S3 says cannot be embedded (empty, archived) raise
:class:`~imgsearch.images.UnsupportedImage`, like bytes the local checks refuse, so one
path in the converger drops an earlier version's vector.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import ClientError, ParamValidationError

from imgsearch import converge
from imgsearch.aws_errors import error_code, http_status
from imgsearch.images import HEADER_READ_BYTES, UnsupportedImage
from imgsearch.message_result import MessageResult, refused_name, s3_error_text
from imgsearch.messages import ObjectMessage
from imgsearch.models import ModelSpec
from imgsearch.vectors import epoch_seconds

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef, HeadObjectRequestTypeDef


def pinned_owner(owner: str | None, source_bucket: str | None, bucket: str) -> str | None:
    """The ``ExpectedBucketOwner`` for a call on ``bucket``: ``owner`` on the source
    bucket, when both are known; None on any other bucket, whose owner is not known.

    The one rule for the search function and the scripts (the embedder reads only the
    source bucket). S3 answers 403 when another account owns a bucket of that name,
    instead of serving its objects.
    """
    return owner if owner and source_bucket and bucket == source_bucket else None


class ObjectHead(NamedTuple):
    etag: str
    size: int
    modified: int | None
    """LastModified, epoch seconds."""


class ObjectBytes(NamedTuple):
    data: bytes
    """The leading bytes: as many as the model and the image header need."""
    total: int
    """The object's size."""
    modified: int | None


class SourceObjects:
    """Reads of the source bucket's objects for one deployment (owner, model)."""

    def __init__(self, s3: S3Client, *, owner: str, model: ModelSpec) -> None:
        self.s3 = s3
        self.owner = owner
        self.model = model

    def head(self, msg: ObjectMessage, result: MessageResult) -> ObjectHead | MessageResult | None:
        """The current object's facts, None if it is gone, or the message's end."""
        request: HeadObjectRequestTypeDef = {"Bucket": msg.bucket, "Key": msg.key}
        if self.owner:
            request["ExpectedBucketOwner"] = self.owner
        try:
            head = self.s3.head_object(**request)
        except ParamValidationError as exc:
            return refused_name(result, exc)
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(error_code(exc), http_status(exc))
            if verdict == "gone":
                return None
            return result.fail(reason, s3_error_text(exc, reason), transient=True)
        etag = converge.normalize_etag(head.get("ETag"))
        if etag is None:
            return result.fail(converge.S3_ERROR, "HeadObject returned no ETag", transient=True)
        return ObjectHead(
            etag, int(head.get("ContentLength") or 0), _epoch(head.get("LastModified"))
        )

    def read(
        self, msg: ObjectMessage, etag: str, size: int | None, result: MessageResult
    ) -> ObjectBytes | MessageResult | None:
        """The leading bytes of the object at ``etag``, None if it is gone, or the message's
        end; :class:`UnsupportedImage` if S3 says it is empty or archived."""
        request: GetObjectRequestTypeDef = {
            "Bucket": msg.bucket,
            "Key": msg.key,
            "IfMatch": f'"{etag}"',
        }
        if self.owner:
            # S3 refuses (403) when another account owns a bucket of this name.
            request["ExpectedBucketOwner"] = self.owner
        if size != 0:
            limit = converge.read_limit(size, self.model, HEADER_READ_BYTES)
            request["Range"] = f"bytes=0-{limit - 1}"
        try:
            response = self.s3.get_object(**request)
            data: bytes = response["Body"].read()
        except ParamValidationError as exc:
            return refused_name(result, exc)
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(error_code(exc), http_status(exc))
            if verdict == "gone":
                return None
            if verdict == "stale":
                return result.end(
                    "stale_skipped",
                    detail=f"object no longer has ETag {etag}; its newer event follows",
                )
            if verdict == "empty":
                raise UnsupportedImage("empty", "the object is empty") from exc
            if verdict == "archived":
                raise UnsupportedImage(
                    reason, "the object is in an archive storage class; restore it to index it"
                ) from exc
            return result.fail(reason, s3_error_text(exc, reason), transient=True)
        result.bytes_read += len(data)
        total = converge.total_size(response.get("ContentRange"), len(data))
        return ObjectBytes(data, total, _epoch(response.get("LastModified")))


def _epoch(value: datetime | None) -> int | None:
    return epoch_seconds(value) if value is not None else None


__all__ = ["ObjectBytes", "ObjectHead", "SourceObjects", "pinned_owner"]
