"""``s3://bucket/key`` in one place: parsing and printing S3 URIs."""

from __future__ import annotations

from dataclasses import dataclass


class S3UriError(ValueError):
    """Text that should be an S3 URI is not one; the message names the text."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_s3_uri(text: str) -> bool:
    return text.startswith("s3://")


def parse_s3_uri(text: str, what: str = "S3 URI") -> S3Uri:
    """``s3://bucket/key`` -> :class:`S3Uri` (the key may be empty or a prefix).

    Raises :class:`S3UriError` naming ``what`` (e.g. ``--image``) for anything else.
    """
    if not is_s3_uri(text):
        raise S3UriError(f"{what} {text!r}: expected s3://bucket/key")
    bucket, _, key = text[5:].partition("/")
    if not bucket:
        raise S3UriError(f"{what} {text!r}: an S3 URI needs a bucket, e.g. s3://bucket/prefix/")
    return S3Uri(bucket, key)


__all__ = ["S3Uri", "S3UriError", "is_s3_uri", "parse_s3_uri"]
