"""Folder filters on the local cloud: subtrees through ``folders``, old vectors upgraded.

The images go through the real pipeline; the queries go through ``imgsearch.vectors``
with the filters ``imgsearch.search_filters`` makes, against the local S3 Vectors store (which
matches ``$eq`` against any element of a list, as S3 Vectors does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from imgsearch.messages import for_backfill, to_send_entry, vector_key
from imgsearch.search_filters import folder_filter, subtree_filter
from imgsearch.vectors import VectorIndex
from localcloud.cloud import LocalCloud
from localcloud.samples import synthetic_images
from tests.e2e.conftest import assert_accounted, upload

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

pytestmark = pytest.mark.e2e

KEYS = ("trips/2024/05/a.jpg", "trips/b.jpg", "other/c.jpg", "root.jpg")
NEW_KEYS = ("folders", "ingested_epoch", "modified_epoch")


def _index(cloud: LocalCloud) -> VectorIndex:
    cfg = cloud.cfg
    return VectorIndex(cloud.client("s3vectors"), cfg.vector_bucket_name, cfg.index_name)


def _found(cloud: LocalCloud, document: dict[str, Any] | None) -> set[str]:
    """Source keys of every vector the filter lets through (the query is any vector)."""
    index = _index(cloud)
    probe_key = vector_key(cloud.resources.source_bucket, KEYS[0])
    probe = index.get([probe_key], return_data=True)[probe_key]["data"]
    hits = index.query(probe, top_k=50, filter=document)
    return {str(hit["metadata"]["source_key"]) for hit in hits}


def test_subtree_and_exact_folder_filters(cloud: LocalCloud) -> None:
    for key, image in zip(KEYS, synthetic_images(len(KEYS)), strict=True):
        upload(cloud, key, image.data)
    assert_accounted(cloud)

    assert _found(cloud, subtree_filter("trips/")) == {"trips/2024/05/a.jpg", "trips/b.jpg"}
    assert _found(cloud, subtree_filter("s3://x/trips/2024")) == {"trips/2024/05/a.jpg"}
    assert _found(cloud, folder_filter("trips/")) == {"trips/b.jpg"}
    assert _found(cloud, folder_filter("/")) == {"root.jpg"}
    assert _found(cloud, subtree_filter("/")) == set(KEYS)  # no filter
    assert _found(cloud, subtree_filter("trip/")) == set()  # whole folder names only


def test_backfill_rerun_upgrades_an_old_vector_without_embedding(cloud: LocalCloud) -> None:
    for key, image in zip(KEYS, synthetic_images(len(KEYS)), strict=True):
        upload(cloud, key, image.data)
    assert_accounted(cloud)
    bucket = cloud.resources.source_bucket
    deep = "trips/2024/05/a.jpg"
    vkey = vector_key(bucket, deep)
    index = _index(cloud)

    # As the embedder wrote it before ``folders`` and the epochs existed.
    stored = index.get([vkey], return_data=True)[vkey]
    old = {k: v for k, v in stored["metadata"].items() if k not in NEW_KEYS}
    cloud.client("s3vectors").put_vectors(
        vectorBucketName=cloud.cfg.vector_bucket_name,
        indexName=cloud.cfg.index_name,
        vectors=[{"key": vkey, "data": {"float32": stored["data"]}, "metadata": old}],
    )
    assert _found(cloud, subtree_filter("trips/")) == {"trips/b.jpg"}  # not from an ancestor
    assert _found(cloud, subtree_filter(f"{deep.rpartition('/')[0]}/")) == {deep}  # own folder

    # The backfill's message for it, as ``imgsearch-backfill`` sends it.
    head = cloud.client("s3").head_object(Bucket=bucket, Key=deep)
    message = for_backfill(bucket, deep, size=head["ContentLength"], etag=head["ETag"])
    calls = dict(cloud.front.requests).get("bedrock:InvokeModel", 0)
    entry = to_send_entry(message, cloud.cfg.message_groups, "0")
    sqs = cloud.client("sqs")
    sqs.send_message_batch(
        QueueUrl=cloud.resources.queue_url,
        Entries=[cast("SendMessageBatchRequestEntryTypeDef", entry)],
    )
    report = assert_accounted(cloud)

    assert report.vectors == len(KEYS)
    assert cloud.ledger.counts["embedded"] == len(KEYS)  # no second embedding,
    assert dict(cloud.front.requests).get("bedrock:InvokeModel", 0) == calls  # no model call
    assert cloud.ledger.counts["metadata_upgraded"] == 1
    last = cloud.ledger.last(bucket, deep)
    assert last is not None and last.outcome == "metadata_upgraded"
    upgraded = index.get([vkey], return_data=True)[vkey]
    assert upgraded["data"] == pytest.approx(stored["data"])
    assert upgraded["metadata"]["folders"] == ["trips/", "trips/2024/", "trips/2024/05/"]
    assert isinstance(upgraded["metadata"]["modified_epoch"], int)
    assert _found(cloud, subtree_filter("trips/")) == {deep, "trips/b.jpg"}
