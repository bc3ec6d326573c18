"""The source bucket's objects as the operations ask about them: is this one still there?

``delete`` warns when a deleted vector's object still exists, ``dlq list`` shows each
failed object's state, ``verify --sample`` finds orphans: one ``HeadObject`` rule for all.
Every call on the source bucket names its expected owner (:class:`SourceBucket`), as the
embedder's do: S3 then refuses (403) a bucket of that name another account created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_not_found
from imgsearch.source_objects import pinned_owner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectRequestTypeDef


@dataclass(frozen=True)
class SourceBucket:
    """The bucket a command treats as the source bucket, and its owner when known.

    The owner is the deployment's ``source_bucket_owner`` (``DeployedConfig``, or the
    stack's own account when that is empty: ``Deployment.settle``); empty means unknown
    (no readable stack), and nothing is pinned.
    """

    name: str | None
    owner: str | None = None

    def owner_for(self, bucket: str) -> str | None:
        """The ``ExpectedBucketOwner`` for a call on ``bucket``: known for the source
        bucket only, None for any other (or when the owner is not known)."""
        return pinned_owner(self.owner, self.name, bucket)


def object_exists(s3: S3Client, bucket: str, key: str, *, owner: str | None = None) -> bool:
    """``HeadObject``: False when S3 says not found; any other error propagates.

    ``owner``: the ``ExpectedBucketOwner`` to send (:meth:`SourceBucket.owner_for`).
    """
    request: HeadObjectRequestTypeDef = {"Bucket": bucket, "Key": key}
    if owner:
        request["ExpectedBucketOwner"] = owner
    try:
        s3.head_object(**request)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


__all__ = ["SourceBucket", "object_exists"]
