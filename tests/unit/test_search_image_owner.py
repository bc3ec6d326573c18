"""The search function's query-image read pins the source bucket's owner, as the embedder's.

``image_uri`` names an object of the source bucket; its ``GetObject`` sends
``ExpectedBucketOwner`` (the search Lambda's ``source_bucket_owner``, which the stack
always fills) so a bucket of that name in another account is refused by S3. Another
bucket (the CLI may read any) and an unknown owner send none, as in ``imgsearch.ingest``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from imgsearch.config import PipelineConfig
from imgsearch.search_images import read_s3_image
from tests.unit.imaging import jpeg

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OWNER = "111122223333"
SOURCE = "photos-bucket"


def _s3() -> S3Client:
    s3: S3Client = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    return s3


@pytest.mark.parametrize(
    ("bucket", "owner", "pinned"),
    [
        (SOURCE, OWNER, True),
        (SOURCE, "", False),  # owner unknown: nothing to pin
        ("someone-elses", OWNER, False),  # the owner is the source bucket's only
    ],
)
def test_the_query_images_get_object_names_the_source_buckets_owner(
    bucket: str, owner: str, pinned: bool
) -> None:
    cfg = PipelineConfig(source_bucket_name=SOURCE, source_bucket_owner=owner)
    data = jpeg()
    s3 = _s3()
    expected = {
        "Bucket": bucket,
        "Key": "a.jpg",
        "Range": f"bytes=0-{cfg.model.max_inline_image_bytes - 1}",
        **({"ExpectedBucketOwner": OWNER} if pinned else {}),
    }
    with Stubber(s3) as stub:
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)},
            expected,
        )
        image = read_s3_image(f"s3://{bucket}/a.jpg", s3, cfg)
        stub.assert_no_pending_responses()
    assert image.format == "jpeg" and image.data == data
