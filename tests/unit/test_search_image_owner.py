"""The search function's query-image read pins the source bucket's owner, as the embedder's.

``image_uri`` names an object of the source bucket; its ``GetObject`` sends
``ExpectedBucketOwner`` (the search Lambda's ``source_bucket_owner``, which the stack
always fills) so a bucket of that name in another account is refused by S3. Another
bucket (the CLI may read any) and an unknown owner send none, as in ``imgsearch.ingest``.
An image too large to send inline goes to Bedrock by S3 location, which then names the
same owner (``s3Location.bucketOwner``): Bedrock reads the object, and the pin holds there too.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from imgsearch.config import PipelineConfig
from imgsearch.search import IndexInfo, Searcher
from imgsearch.search_images import read_s3_image
from tests.unit.imaging import jpeg

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

OWNER = "111122223333"
SOURCE = "photos-bucket"


def _client(service: str) -> Any:
    return botocore.session.get_session().create_client(
        service, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def _s3() -> S3Client:
    s3: S3Client = _client("s3")
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


@pytest.mark.parametrize(
    ("bucket", "owner", "sent"),
    [
        (SOURCE, OWNER, OWNER),
        (SOURCE, "", None),
        ("someone-elses", OWNER, None),
    ],
)
def test_a_large_query_image_sent_by_s3_location_names_the_owner_to_bedrock(
    bucket: str, owner: str, sent: str | None
) -> None:
    cfg = PipelineConfig(source_bucket_name=SOURCE, source_bucket_owner=owner)
    model = cfg.model
    head = jpeg()  # the ranged read's first bytes; the object is larger than inline allows
    total = model.max_inline_image_bytes + 1
    s3 = _s3()
    bedrock: BedrockRuntimeClient = _client("bedrock-runtime")
    s3vectors: S3VectorsClient = _client("s3vectors")
    bodies: list[bytes] = []
    bedrock.meta.events.register(
        "before-parameter-build.bedrock-runtime.InvokeModel",
        lambda params, **_: bodies.append(params["body"]),
    )
    dimension = model.default_dimension
    index = IndexInfo("vectors", "images", dimension, "cosine")
    searcher = Searcher(
        cfg, bedrock=bedrock, s3vectors=s3vectors, s3=s3, index=index, check_empty=False
    )
    answer = json.dumps(
        {"embeddings": [{"embeddingType": "IMAGE", "embedding": [0.5] * dimension}]}
    )
    with Stubber(s3) as s3_stub, Stubber(bedrock) as bedrock_stub, Stubber(s3vectors) as vec_stub:
        s3_stub.add_response(
            "get_object",
            {
                "Body": StreamingBody(io.BytesIO(head), len(head)),
                "ContentLength": len(head),
                "ContentRange": f"bytes 0-{len(head) - 1}/{total}",
            },
        )
        bedrock_stub.add_response(
            "invoke_model",
            {
                "body": StreamingBody(io.BytesIO(answer.encode()), len(answer)),
                "contentType": "application/json",
            },
        )
        vec_stub.add_response("query_vectors", {"vectors": [], "distanceMetric": "cosine"})
        result = searcher.image_at(f"s3://{bucket}/big.jpg")
        for stub in (s3_stub, bedrock_stub, vec_stub):
            stub.assert_no_pending_responses()
    assert result.query["image_sent"] == "by S3 location"
    image = json.loads(bodies[0])["singleEmbeddingParams"]["image"]
    location = image["source"]["s3Location"]
    expected = {"uri": f"s3://{bucket}/big.jpg", **({"bucketOwner": sent} if sent else {})}
    assert location == expected
