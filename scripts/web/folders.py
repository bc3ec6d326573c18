"""The folder picker's data: the direct subfolders of a folder of the source bucket.

Why S3 and not the index: the index has no folder listing, and finding the folders
among the vectors means listing every vector (``ListVectors``, 1,000 per page: hours
for a 10M-vector index). S3's ``ListObjectsV2`` with ``Delimiter="/"`` answers the
direct subfolders of one folder in a page or two, whatever the bucket's size. The
folders shown are the bucket's, so one may hold no indexed image (outside the configured
prefixes or suffixes); a search there then finds nothing, which is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgsearch.search_filters import normalise_folder

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FOLDERS_MAX = 1_000
"""Subfolders answered at most; beyond, ``truncated`` is true (type a folder instead)."""
PAGES_MAX = 10
"""ListObjectsV2 pages read at most: a folder holding millions of images directly
(its files are listed too) answers what the first pages found, ``truncated``."""


@dataclass(frozen=True)
class FolderListing:
    under: str
    folders: list[str]
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"under": self.under, "folders": self.folders, "truncated": self.truncated}


def list_folders(
    s3: S3Client,
    bucket: str,
    under: str,
    limit: int = FOLDERS_MAX,
    *,
    owner: str | None = None,
) -> FolderListing:
    """The direct subfolders of ``under`` (``""``: the bucket's top level), paged, capped;
    ``owner``: the bucket's expected owner (``ExpectedBucketOwner``) when known."""
    folder = normalise_folder(under, bucket, what="under")
    found: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": folder, "Delimiter": "/"}
    if owner:
        kwargs["ExpectedBucketOwner"] = owner
    for _ in range(PAGES_MAX):
        kwargs["MaxKeys"] = min(1000, limit + 1 - len(found))
        response = s3.list_objects_v2(**kwargs)
        found.extend(
            str(p["Prefix"]) for p in response.get("CommonPrefixes") or [] if p.get("Prefix")
        )
        token = response.get("NextContinuationToken")
        if len(found) > limit:
            return FolderListing(folder, found[:limit], True)
        if not token or not response.get("IsTruncated"):
            return FolderListing(folder, found, False)
        kwargs["ContinuationToken"] = token
    return FolderListing(folder, found, True)


__all__ = ["FOLDERS_MAX", "FolderListing", "list_folders"]
