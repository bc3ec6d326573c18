"""The whole pipeline on the local cloud: S3 -> router -> FIFO queue -> embedder ->
(stand-in) Bedrock -> S3 Vectors, with the production handlers.

Every test ends with :func:`assert_accounted`: each object is in exactly one of
{vector stored, permanent failure recorded, message in a DLQ}.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imgsearch.messages import vector_key
from localcloud.cloud import LocalCloud
from localcloud.samples import corrupt_jpeg, encode, photo, sample_set
from tests.e2e.conftest import assert_accounted, nearest, upload, wait_queued

pytestmark = pytest.mark.e2e


@pytest.fixture(params=[1, 10], ids=["batch1", "batch10"])
def cloud(make_cloud: Callable[..., LocalCloud], request: pytest.FixtureRequest) -> LocalCloud:
    """This module's tests run at batch size 1 and at 10 (FIFO batches of one group)."""
    return make_cloud(batch_size=request.param)


def test_images_become_vectors_and_both_searches_find_them(cloud: LocalCloud) -> None:
    samples = sample_set(("coffee", "rocket", "retina"), max_side=256)
    for s in samples:
        upload(cloud, s.key, s.data)
    report = assert_accounted(cloud)
    assert report.objects == report.vectors == len(samples) == 15
    assert cloud.ledger.counts["embedded"] == 15

    cropped = next(s for s in samples if s.key == "photos/rocket-cropped.jpg")
    hits = nearest(cloud, image=cropped.data, k=5)
    assert hits[0] == ("photos/rocket-cropped.jpg", pytest.approx(0.0, abs=1e-4))
    assert {key.split("-")[0].removesuffix(".jpg") for key, _ in hits} == {"photos/rocket"}

    assert nearest(cloud, text="blue", k=1)[0][0].startswith("photos/rocket")
    assert nearest(cloud, text="red", k=1)[0][0].startswith("photos/retina")


@pytest.mark.parametrize("batch_size", [1, 10])
def test_quick_overwrites_end_with_the_last_version(
    make_cloud: Callable[..., LocalCloud], batch_size: int
) -> None:
    # With batch_size 10 the three messages of the one key (one message group) can reach
    # the embedder in one batch, in order: the last version must be the one kept.
    cloud = make_cloud(batch_size=batch_size)
    assert cloud.event_source is not None
    cloud.event_source.disable()  # all versions are queued when polling starts
    versions = [encode(photo(name, 128)) for name in ("coffee", "rocket", "retina")]
    for data in versions:
        upload(cloud, "photos/same.jpg", data)
    wait_queued(cloud, 3)
    cloud.event_source.enable()
    report = assert_accounted(cloud)
    assert report.vectors == 1
    [(key, distance)] = nearest(cloud, image=versions[-1], k=1)
    assert key == "photos/same.jpg" and distance == pytest.approx(0.0, abs=1e-4)
    if batch_size > 1:
        assert cloud.event_source.stats["group_runs"] >= 1


def test_overwrite_keeps_one_vector_with_the_new_content(cloud: LocalCloud) -> None:
    first, second = encode(photo("coffee", 192)), encode(photo("rocket", 192))
    upload(cloud, "photos/same.jpg", first)
    assert_accounted(cloud)
    upload(cloud, "photos/same.jpg", second)
    report = assert_accounted(cloud)
    assert report.vectors == 1
    assert cloud.vector_keys() == {vector_key(cloud.resources.source_bucket, "photos/same.jpg")}
    [(key, distance)] = nearest(cloud, image=second, k=1)
    assert key == "photos/same.jpg" and distance == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("batch_size", [1, 10])
def test_delete_removes_the_vector(make_cloud: Callable[..., LocalCloud], batch_size: int) -> None:
    cloud = make_cloud(batch_size=batch_size)
    for name in ("coffee", "chelsea"):
        upload(cloud, f"photos/{name}.jpg", encode(photo(name, 192)))
    assert assert_accounted(cloud).vectors == 2
    cloud.client("s3").delete_object(Bucket=cloud.resources.source_bucket, Key="photos/coffee.jpg")
    report = assert_accounted(cloud)
    assert report.vectors == 1
    assert cloud.vector_keys() == {vector_key(cloud.resources.source_bucket, "photos/chelsea.jpg")}
    assert cloud.ledger.counts["deleted"] == 1


def test_delete_then_reupload_of_the_same_bytes_is_indexed_again(cloud: LocalCloud) -> None:
    # Within SQS's five-minute dedup window: the re-upload's message must not collapse
    # with the first upload's, or the delete would leave the object without a vector.
    data = encode(photo("coffee", 192))
    upload(cloud, "photos/coffee.jpg", data)
    assert assert_accounted(cloud).vectors == 1
    cloud.client("s3").delete_object(Bucket=cloud.resources.source_bucket, Key="photos/coffee.jpg")
    assert assert_accounted(cloud).vectors == 0
    upload(cloud, "photos/coffee.jpg", data)
    report = assert_accounted(cloud)
    assert cloud.vector_keys() == {vector_key(cloud.resources.source_bucket, "photos/coffee.jpg")}
    assert report.vectors == 1


def test_a_corrupt_file_is_counted_as_a_permanent_failure(cloud: LocalCloud) -> None:
    upload(cloud, "photos/good.jpg", encode(photo("coffee", 128)))
    upload(cloud, "photos/broken.jpg", corrupt_jpeg())
    upload(cloud, "photos/not-an-image.png", b"this is text, not a PNG")
    report = assert_accounted(cloud)
    assert (report.vectors, report.permanent_failures, report.in_dlq) == (1, 2, 0)
    failed = cloud.ledger.permanent_failures()
    bucket = cloud.resources.source_bucket
    assert set(failed) == {(bucket, "photos/broken.jpg"), (bucket, "photos/not-an-image.png")}
    assert all(o.reason for o in failed.values())


def test_a_burst_of_throttling_is_absorbed_without_loss(cloud: LocalCloud) -> None:
    rule = cloud.faults.throttle_bedrock(12)
    samples = sample_set(("coffee", "rocket"), max_side=128)
    for s in samples:
        upload(cloud, s.key, s.data)
    report = assert_accounted(cloud)
    assert rule.fired == 12  # the throttling really happened
    assert (report.vectors, report.permanent_failures, report.in_dlq) == (len(samples), 0, 0)


@pytest.mark.parametrize("batch_size", [1, 10])
def test_a_message_that_keeps_failing_lands_in_the_dlq(
    make_cloud: Callable[..., LocalCloud], batch_size: int
) -> None:
    cloud = make_cloud(max_receive_count=2, batch_size=batch_size)
    bucket = cloud.resources.source_bucket
    doomed = "photos/doomed.jpg"
    # S3 Vectors refuses every write of this one object's vector.
    rule = cloud.faults.s3vectors_error(
        "PutVectors", "ServiceUnavailableException", match=vector_key(bucket, doomed)
    )
    upload(cloud, doomed, encode(photo("astronaut", 128)))
    upload(cloud, "photos/fine.jpg", encode(photo("coffee", 128)))
    report = assert_accounted(cloud)
    assert rule.fired >= 2
    assert (report.vectors, report.permanent_failures, report.in_dlq) == (1, 0, 1)
    [dead] = [m for m in cloud.dlq_messages() if m["queue"] == cloud.resources.dlq_url]
    assert doomed in dead["body"]


def test_only_selected_keys_are_indexed(make_cloud: Callable[..., LocalCloud]) -> None:
    cloud = make_cloud(prefixes=["photos/", "scans/"])
    jpeg = encode(photo("coffee", 96))
    upload(cloud, "photos/a.jpg", jpeg)
    upload(cloud, "scans/B.JPG", jpeg)  # upper-case suffix: its own notification filter
    upload(cloud, "other/c.jpg", jpeg)  # outside the prefixes
    upload(cloud, "photos/notes.txt", b"not an image")  # outside the suffixes
    report = assert_accounted(cloud)
    assert report.objects == report.vectors == 2
    bucket = cloud.resources.source_bucket
    assert cloud.vector_keys() == {
        vector_key(bucket, "photos/a.jpg"),
        vector_key(bucket, "scans/B.JPG"),
    }


def test_marengo_pipeline(make_cloud: Callable[..., LocalCloud]) -> None:
    from imgsearch.models import MARENGO_3

    cloud = make_cloud(model_id=MARENGO_3.model_id, dimension=MARENGO_3.default_dimension)
    for s in sample_set(("rocket", "coffee"), variants=("cropped",), max_side=128):
        upload(cloud, s.key, s.data)
    upload(cloud, "photos/anim.gif", encode(photo("retina", 64), "GIF"))  # Marengo: no GIF
    report = assert_accounted(cloud)
    assert (report.vectors, report.permanent_failures) == (4, 1)
    assert nearest(cloud, text="blue", k=1)[0][0].startswith("photos/rocket")
