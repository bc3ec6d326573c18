"""The source bucket's objects as the operations ask about them: is this one still there?

``delete`` warns when a deleted vector's object still exists, ``dlq list`` shows each
failed object's state, ``verify --sample`` finds orphans: one ``HeadObject`` rule for all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_not_found

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def object_exists(s3: S3Client, bucket: str, key: str) -> bool:
    """``HeadObject``: False when S3 says not found; any other error propagates."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


__all__ = ["object_exists"]
