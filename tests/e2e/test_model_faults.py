"""Bedrock's configuration and input answers on the local cloud, through the real handlers.

A configuration problem (model access not granted, a base model id where the Region
offers only an inference profile) must never cost the index a vector: the message is
retried and the earlier vector stays. A rejected image ends as one permanent failure,
and its earlier vector stays too (the model's answer is no proof the new bytes are bad).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from imgsearch.messages import vector_key
from imgsearch.models import MARENGO_3
from localcloud.cloud import LocalCloud
from localcloud.samples import encode, photo
from tests.e2e.conftest import assert_accounted, nearest, upload

pytestmark = pytest.mark.e2e


@pytest.fixture(params=[1, 10], ids=["batch1", "batch10"])
def cloud(make_cloud: Callable[..., LocalCloud], request: pytest.FixtureRequest) -> LocalCloud:
    """This module's tests run at batch size 1 and at 10 (FIFO batches of one group)."""
    return make_cloud(batch_size=request.param)


def _stored(cloud: LocalCloud, key: str) -> dict[str, Any]:
    """The metadata of ``key``'s vector ({} if it has none)."""
    found = cloud.client("s3vectors").get_vectors(
        vectorBucketName=cloud.cfg.vector_bucket_name,
        indexName=cloud.cfg.index_name,
        keys=[vector_key(cloud.resources.source_bucket, key)],
        returnMetadata=True,
    )["vectors"]
    return dict(found[0].get("metadata") or {}) if found else {}


def _etag(cloud: LocalCloud, key: str) -> str:
    head = cloud.client("s3").head_object(Bucket=cloud.resources.source_bucket, Key=key)
    return str(head["ETag"]).strip('"')


def _wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_configuration_answers_keep_the_vectors_and_a_rejected_image_is_one_failure(
    cloud: LocalCloud,
) -> None:
    keys = ("photos/a.jpg", "photos/b.jpg", "photos/c.jpg")
    for key, name in zip(keys, ("coffee", "rocket", "chelsea"), strict=True):
        upload(cloud, key, encode(photo(name, 128)))
    assert_accounted(cloud)
    old = {key: _etag(cloud, key) for key in keys}
    assert {key: _stored(cloud, key)["etag"] for key in keys} == old

    # Each of the next two InvokeModel calls gets one configuration answer.
    cloud.faults.bedrock_answer("model_not_enabled", 1)
    cloud.faults.bedrock_answer("inference_profile_required", 1)
    for key in keys[:2]:
        upload(cloud, key, encode(photo("camera", 128)))
    _wait_for(lambda: cloud.ledger.counts["transient_failure"] >= 2)
    last = [cloud.ledger.last(cloud.resources.source_bucket, k) for k in keys[:2]]
    assert {o.reason for o in last if o is not None} == {
        "access_denied",
        "model_configuration_error",
    }
    # While the messages wait for their redelivery, the earlier vectors are all there.
    assert {key: _stored(cloud, key).get("etag") for key in keys} == old

    report = assert_accounted(cloud)  # the redelivery finds the fault cleared
    assert report.vectors == 3 and report.permanent_failures == 0 and report.in_dlq == 0
    for key in keys[:2]:
        assert _stored(cloud, key)["etag"] == _etag(cloud, key) != old[key]
    assert cloud.ledger.counts["permanent_failure"] == 0

    cloud.faults.bedrock_answer("input_rejected", 1)
    upload(cloud, keys[2], encode(photo("camera", 96)))
    cloud.wait_idle(60)
    rejected = cloud.ledger.last(cloud.resources.source_bucket, keys[2])
    assert rejected is not None
    assert (rejected.outcome, rejected.reason) == ("permanent_failure", "model_rejected_input")
    assert cloud.ledger.counts["permanent_failure"] == 1
    assert cloud.ledger.counts["transient_failure"] == 2  # acknowledged, not retried
    assert cloud.dlq_messages() == []
    assert _stored(cloud, keys[2])["etag"] == old[keys[2]]  # the earlier vector stays


def test_an_inference_profile_is_what_the_pipeline_invokes(
    make_cloud: Callable[..., LocalCloud],
) -> None:
    """eu-west-1 offers Marengo only through a profile: the base id would be refused."""
    profile = f"eu.{MARENGO_3.model_id}"
    cloud = make_cloud(region="eu-west-1", model_id=profile, dimension=512)
    upload(cloud, "photos/red.jpg", encode(photo("retina", 128)))
    report = assert_accounted(cloud)
    assert report.vectors == 1 and report.permanent_failures == 0
    # The vector names the model, not the route to it: plain <-> profile re-embeds nothing.
    assert _stored(cloud, "photos/red.jpg")["model_id"] == MARENGO_3.model_id
    assert nearest(cloud, text="red", k=1)[0][0] == "photos/red.jpg"
