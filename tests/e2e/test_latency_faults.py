"""Injected latency on S3 and S3 Vectors calls, and the emulator's own time per call.

The benchmarks put a latency profile on every service the embedder calls; these tests
show that an S3 ``GetObject`` and S3 Vectors calls take at least the injected time, that
a rule names its operation and object, and that the front server's own time per call
leaves the injected latency out. Only lower bounds on measured durations are asserted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from imgsearch.config import load_config
from localcloud.cloud import LocalCloud
from localcloud.services.faults import FaultRule

pytestmark = pytest.mark.e2e

INJECTED = 0.25


@pytest.fixture
def services() -> Iterator[LocalCloud]:
    """The local cloud's services only: no Lambda function runs, nothing else calls."""
    with LocalCloud.start(load_config(), runtime=False) as cloud:
        yield cloud


def _timed(call: object, **kwargs: object) -> float:
    assert callable(call)
    started = time.perf_counter()
    call(**kwargs)
    return time.perf_counter() - started


def test_s3_get_object_takes_at_least_the_injected_latency(services: LocalCloud) -> None:
    s3, bucket = services.client("s3"), services.resources.source_bucket
    s3.put_object(Bucket=bucket, Key="photos/a.jpg", Body=b"a")
    s3.put_object(Bucket=bucket, Key="photos/b.jpg", Body=b"b")
    get = services.faults.latency("s3", "GetObject", INJECTED)
    only_a = services.faults.add(
        FaultRule("s3", None, "HeadObject", latency_seconds=INJECTED, match="photos/a.jpg")
    )

    assert _timed(s3.get_object, Bucket=bucket, Key="photos/a.jpg") >= INJECTED
    assert get.fired == 1
    assert _timed(s3.head_object, Bucket=bucket, Key="photos/a.jpg") >= INJECTED
    s3.head_object(Bucket=bucket, Key="photos/b.jpg")
    assert (get.fired, only_a.fired) == (1, 1)  # a HEAD is not a GET; b is not matched


def test_s3_vectors_calls_take_at_least_the_injected_latency(services: LocalCloud) -> None:
    vectors = services.client("s3vectors")
    index = {
        "vectorBucketName": services.cfg.vector_bucket_name,
        "indexName": services.cfg.index_name,
    }
    record = {"key": "k1", "data": {"float32": [0.5] * services.cfg.dimension}}
    put = services.faults.latency("s3vectors", "PutVectors", INJECTED)
    get = services.faults.latency("s3vectors", "GetVectors", INJECTED)

    assert _timed(vectors.put_vectors, **index, vectors=[record]) >= INJECTED
    assert _timed(vectors.get_vectors, **index, keys=["k1"]) >= INJECTED
    assert (put.fired, get.fired) == (1, 1)


def test_the_emulators_own_time_leaves_the_injected_latency_out(services: LocalCloud) -> None:
    s3, bucket = services.client("s3"), services.resources.source_bucket
    s3.put_object(Bucket=bucket, Key="photos/a.jpg", Body=b"a")
    services.faults.latency("s3", "GetObject", INJECTED)
    before = services.front.call_times.snapshot()

    elapsed = _timed(s3.get_object, Bucket=bucket, Key="photos/a.jpg")

    own = services.front.call_times.since(before)["s3:GetObject"]
    assert own.calls == 1
    # The client's time encloses the server's: slept + own. Had the latency been
    # counted as the emulator's, own alone would be >= INJECTED and this would fail.
    assert elapsed >= INJECTED + own.seconds
