"""``delete``: remove vectors by the source object's URI, one or a whole prefix.

Vector keys are deterministic (``imgsearch.messages.vector_key(bucket, key)``), so a
vector is deleted by naming its object: no query-by-metadata detour to find the key.
For ``--prefix`` the vectors are found from the source bucket's listing under the
prefix (one ``GetVectors`` per 100 objects); ``--scan-index`` also walks the index
(``ListVectors`` with metadata) to catch vectors whose objects are already gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from imgsearch.aws_errors import is_missing_bucket
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.vectors import VectorIndex
from scripts.ops.errors import BucketNotFound
from scripts.ops.index_listing import list_vectors, source_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestPaginateTypeDef


@dataclass
class DeletionPlan:
    bucket: str
    prefix: str
    uris: dict[str, str] = field(default_factory=dict)
    """Vector key -> source URI of every vector to delete."""
    objects_listed: int = 0
    found_by_scan: int = 0

    @property
    def count(self) -> int:
        return len(self.uris)


def plan_prefix(
    s3: S3Client,
    index: VectorIndex,
    bucket: str,
    prefix: str,
    *,
    scan_index: bool = False,
    owner: str | None = None,
) -> DeletionPlan:
    """Every stored vector of an object under ``s3://bucket/prefix``; ``owner``: the
    bucket's expected owner (``ExpectedBucketOwner``) when known."""
    plan = DeletionPlan(bucket, prefix)
    candidates: dict[str, str] = {}
    paginator = s3.get_paginator("list_objects_v2")
    request: ListObjectsV2RequestPaginateTypeDef = {"Bucket": bucket, "Prefix": prefix}
    if owner:
        request["ExpectedBucketOwner"] = owner
    try:
        for page in paginator.paginate(**request):
            for obj in page.get("Contents") or []:
                plan.objects_listed += 1
                candidates[vector_key(bucket, obj["Key"])] = f"s3://{bucket}/{obj['Key']}"
    except ClientError as exc:
        if is_missing_bucket(exc):
            raise BucketNotFound(
                f"--prefix s3://{bucket}/{prefix}: bucket {bucket!r} does not exist"
            ) from exc
        raise
    keys = list(candidates)
    for start in range(0, len(keys), LIMITS.get_vectors_max_keys):
        stored = index.get(keys[start : start + LIMITS.get_vectors_max_keys])
        for vkey in stored:
            plan.uris[vkey] = candidates[vkey]
    if scan_index:
        for vector in list_vectors(index):
            vkey = str(vector["key"])
            if vkey in plan.uris:
                continue
            src_bucket, src_key = source_of(dict(vector.get("metadata") or {}))
            if src_bucket == bucket and src_key is not None and src_key.startswith(prefix):
                plan.uris[vkey] = f"s3://{src_bucket}/{src_key}"
                plan.found_by_scan += 1
    return plan


def execute(index: VectorIndex, plan: DeletionPlan) -> int:
    """Delete the planned vectors (``DeleteVectors`` of 500); returns how many."""
    index.delete(list(plan.uris))
    return plan.count


__all__ = ["DeletionPlan", "execute", "plan_prefix"]
