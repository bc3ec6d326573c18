"""``dlq list`` pins the source bucket's owner on its ``HeadObject``, as ``verify`` does.

Each listed message's object state is a ``HeadObject``; on the configured source bucket
it names the deployment's ``source_bucket_owner`` (``ExpectedBucketOwner``), so a bucket
of that name another account created is refused (403, shown as ``unknown: ...``) rather
than read. A message naming another bucket, or an unknown owner, sends none.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from imgsearch.messages import for_backfill
from scripts.ops.dlq import list_dlq
from scripts.ops.failure_log import LogLookup
from scripts.ops.objects import SourceBucket

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed-dlq.fifo"
OWNER = "111122223333"
SOURCE = "photos"
OTHER = "someone-elses"


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def _message(name: str, bucket: str) -> dict[str, Any]:
    return {
        "MessageId": name,
        "ReceiptHandle": f"r-{name}",
        "Body": for_backfill(bucket, f"{name}.jpg", size=1, etag="e").to_json(),
        "Attributes": {"MessageGroupId": "g00001", "ApproximateReceiveCount": "3"},
    }


@pytest.mark.parametrize(
    ("source", "pinned"),
    [
        (SourceBucket(SOURCE, OWNER), OWNER),
        (SourceBucket(SOURCE, ""), None),  # owner unknown: nothing to pin
        (None, None),
    ],
)
def test_dlq_lists_object_state_with_the_source_buckets_owner(
    source: SourceBucket | None, pinned: str | None
) -> None:
    sqs, s3 = _client("sqs"), _client("s3")
    messages = [_message("a", SOURCE), _message("b", OTHER)]
    owner = {"ExpectedBucketOwner": pinned} if pinned else {}
    with Stubber(sqs) as sqs_stub, Stubber(s3) as s3_stub:
        sqs_stub.add_response(
            "get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "2"}}
        )
        sqs_stub.add_response("receive_message", {"Messages": messages})
        sqs_stub.add_response("receive_message", {"Messages": []})
        sqs_stub.add_response("change_message_visibility_batch", {"Successful": [], "Failed": []})
        s3_stub.add_response("head_object", {}, {"Bucket": SOURCE, "Key": "a.jpg", **owner})
        s3_stub.add_client_error(
            "head_object",
            "404",
            http_status_code=404,
            expected_params={"Bucket": OTHER, "Key": "b.jpg"},
        )
        listing = list_dlq(
            sqs=sqs,
            s3=s3,
            index=None,
            logs=LogLookup(_client("logs"), None, lambda _: None),
            dlq_url=DLQ_URL,
            limit=10,
            source=source,
        )
        s3_stub.assert_no_pending_responses()
    assert [(e.uri, e.object_state) for e in listing.entries] == [
        (f"s3://{SOURCE}/a.jpg", "exists"),
        (f"s3://{OTHER}/b.jpg", "gone"),
    ]
