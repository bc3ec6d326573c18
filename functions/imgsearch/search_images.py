"""Query images: inline bytes or an S3 object, checked the way the embedder checks images.

A query image is sniffed from its magic bytes (:func:`imgsearch.images.sniff`), its
format must be one the model accepts, and an inline one must fit the model's inline
limit (or a smaller one the caller sets: the search API's request payload). An S3
object too large to send inline is sent by S3 location. ``what`` names the input in
messages: the CLI's ``--image``, the API's ``image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from imgsearch import converge
from imgsearch.aws_errors import error_code, is_missing_bucket, is_not_found
from imgsearch.config import PipelineConfig
from imgsearch.images import HEADER_READ_BYTES, UnsupportedImage, sniff
from imgsearch.s3uri import S3Uri, S3UriError, parse_s3_uri
from imgsearch.search_errors import (
    BucketNotAllowed,
    QueryImageTooLarge,
    ResourceNotFound,
    SearchInputError,
    UnsupportedQueryImage,
)
from imgsearch.source_objects import pinned_owner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef


@dataclass(frozen=True)
class QueryImage:
    """An image to search with: inline bytes, or (too large for inline) an S3 location."""

    source: str
    format: str
    width: int
    height: int
    size: int
    data: bytes | None = None
    s3_uri: str | None = None
    bucket_owner: str | None = None
    """The account pinned on ``s3_uri``'s bucket (:func:`source_owner`), for Bedrock's
    ``s3Location.bucketOwner``."""


def image_from_bytes(
    data: bytes, source: str, cfg: PipelineConfig, *, max_bytes: int | None = None
) -> QueryImage:
    """A query image from bytes (a local file or an upload), checked as the embedder checks.

    ``max_bytes`` lowers the model's inline limit (the API's payload allows less).
    """
    limit = min(cfg.model.max_inline_image_bytes, max_bytes or cfg.model.max_inline_image_bytes)
    try:
        info = sniff(data)
    except UnsupportedImage as exc:
        raise UnsupportedQueryImage(
            f"{source}: not an image the model can search with ({exc.detail}); use a JPEG, "
            f"PNG, GIF or WebP file"
        ) from exc
    check_format(info.format, source, cfg)
    if len(data) > limit:
        raise QueryImageTooLarge(
            f"{source}: {len(data)} bytes is above the {limit}-byte limit for an inline "
            "query image; upload it to S3 and search with its s3:// URI"
        )
    return QueryImage(source, info.format, info.width, info.height, len(data), data=data)


def read_local_image(path: str, cfg: PipelineConfig) -> QueryImage:
    """A query image from a local file (the CLI's ``--image ./cat.jpg``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SearchInputError(
            f"--image {path!r}: no such file (give a local path or an s3:// URI)"
        )
    size = file.stat().st_size
    if size > cfg.model.max_inline_image_bytes:
        raise QueryImageTooLarge(
            f"--image {path!r}: {size} bytes is above the {cfg.model.max_inline_image_bytes}-"
            "byte limit for an inline query image; upload it to S3 and search with its s3:// URI"
        )
    return image_from_bytes(file.read_bytes(), f"--image {path!r}", cfg)


def object_location(uri: str, what: str, allowed_buckets: frozenset[str] | None = None) -> S3Uri:
    """``s3://bucket/key`` naming one object, in an allowed bucket (None: any bucket)."""
    try:
        location = parse_s3_uri(uri, what)
    except S3UriError as exc:
        raise SearchInputError(str(exc)) from exc
    if not location.key:
        raise SearchInputError(
            f"{what} {uri!r}: name an object, e.g. s3://{location.bucket}/photos/cat.jpg"
        )
    if allowed_buckets is not None and location.bucket not in allowed_buckets:
        raise BucketNotAllowed(
            f"{what} {uri!r}: bucket {location.bucket!r} is not searchable here; only "
            f"objects in {', '.join(sorted(allowed_buckets))} can be used"
        )
    return location


def source_owner(cfg: PipelineConfig, bucket: str) -> str | None:
    """:func:`~imgsearch.source_objects.pinned_owner` with ``cfg``'s source bucket and
    owner (the stack always fills the owner for the Lambdas)."""
    return pinned_owner(cfg.source_bucket_owner, cfg.source_bucket_name, bucket)


def read_s3_image(
    uri: str,
    s3: S3Client,
    cfg: PipelineConfig,
    *,
    what: str = "--image",
    allowed_buckets: frozenset[str] | None = None,
) -> QueryImage:
    """A query image from S3: inline if it fits the request body, else by S3 location."""
    location = object_location(uri, what, allowed_buckets)
    bucket, key = location.bucket, location.key
    model = cfg.model
    owner = source_owner(cfg, bucket)
    request: GetObjectRequestTypeDef = {
        "Bucket": bucket,
        "Key": key,
        "Range": f"bytes=0-{model.max_inline_image_bytes - 1}",
    }
    if owner:
        request["ExpectedBucketOwner"] = owner
    try:
        response = s3.get_object(**request)
    except ClientError as exc:
        code = error_code(exc)
        # NoSuchBucket is a 404 too: tell it apart before the object-not-found rule.
        if is_missing_bucket(exc):
            raise ResourceNotFound(f"{what} {uri!r}: bucket {bucket!r} does not exist") from exc
        if is_not_found(exc):
            raise ResourceNotFound(f"{what} {uri!r}: no such object") from exc
        if code == "InvalidRange":
            raise SearchInputError(f"{what} {uri!r}: the object is empty") from exc
        raise
    data: bytes = response["Body"].read()
    total = converge.total_size(response.get("ContentRange"), len(data))
    if len(data) >= total:
        return image_from_bytes(data, f"{what} {uri!r}", cfg)
    if total > model.max_image_bytes:
        raise QueryImageTooLarge(
            f"{what} {uri!r}: {total} bytes is above the {model.max_image_bytes}-byte limit "
            f"of {model.model_id}"
        )
    try:
        info = sniff(data[:HEADER_READ_BYTES], complete=False)
    except UnsupportedImage as exc:
        raise UnsupportedQueryImage(
            f"{what} {uri!r}: not an image the model can search with ({exc.detail})"
        ) from exc
    check_format(info.format, f"{what} {uri!r}", cfg)
    return QueryImage(
        uri, info.format, info.width, info.height, total, s3_uri=uri, bucket_owner=owner
    )


def check_format(image_format: str, source: str, cfg: PipelineConfig) -> None:
    if image_format not in cfg.model.image_formats:
        raise UnsupportedQueryImage(
            f"{source}: {cfg.model.model_id} does not accept {image_format} images "
            f"(accepted: {', '.join(cfg.model.image_formats)})"
        )


__all__ = [
    "QueryImage",
    "check_format",
    "image_from_bytes",
    "object_location",
    "read_local_image",
    "read_s3_image",
    "source_owner",
]
