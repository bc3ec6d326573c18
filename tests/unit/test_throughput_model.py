"""The throughput model against hand-computed rates (``imgsearch.pricing.throughput``).

Each expected rate is worked out by hand in the comment above it and written as a
literal: a change to the model shows up here.
"""

from __future__ import annotations

import math

import pytest

from imgsearch.pricing import ServiceTimes, throughput

# 400 ms Bedrock + 20 ms S3 GET + 30 ms GetVectors = 0.45 s per image; PutVectors 80 ms.
PROFILE = ServiceTimes(bedrock=0.4, s3_get=0.02, get_vectors=0.03, put_vectors=0.08)


def test_batch_of_one_pays_a_put_per_image() -> None:
    # 5 invocations, each 1 image: 0.45 + 0.08 = 0.53 s -> 5 / 0.53 = 9.4340 images/s
    tp = throughput(concurrency=5, message_groups=64, batch_size=1, pool_size=4, times=PROFILE)
    assert tp.limited_by == "lambda"
    assert tp.images_per_second == pytest.approx(9.433962, rel=1e-6)
    assert tp.seconds_per_invocation == pytest.approx(0.53)


def test_a_pool_smaller_than_the_batch_takes_waves() -> None:
    # batch 10, pool 4: 3 waves x 0.45 + 0.08 = 1.43 s per batch -> 5 x 10 / 1.43 = 34.965
    tp = throughput(concurrency=5, message_groups=64, batch_size=10, pool_size=4, times=PROFILE)
    assert tp.seconds_per_invocation == pytest.approx(1.43)
    assert tp.images_per_second == pytest.approx(34.965035, rel=1e-6)


def test_one_message_group_runs_one_batch_at_a_time() -> None:
    # min(5, 1) = 1 invocation of 1 image per 0.53 s -> 1.8868 images/s
    tp = throughput(concurrency=5, message_groups=1, batch_size=1, pool_size=4, times=PROFILE)
    assert tp.images_per_second == pytest.approx(1.886792, rel=1e-6)


def test_the_bedrock_quota_binds_a_wide_configuration() -> None:
    # Lambda: 200 x 10 / 0.53 = 3773.6/s; S3 Vectors 2,500 vectors/s; 6,000 RPM = 100/s
    tp = throughput(
        concurrency=200,
        message_groups=1000,
        batch_size=10,
        pool_size=10,
        times=PROFILE,
        bedrock_rpm=6000,
    )
    assert tp.limited_by == "bedrock_quota"
    assert tp.images_per_second == pytest.approx(100.0)
    assert tp.bounds["lambda"] == pytest.approx(3773.584906, rel=1e-6)


def test_the_index_write_limits_bind_without_a_quota() -> None:
    # batch 10: 1,000 requests/s x 10 = 10,000/s, but 2,500 vectors/s binds first
    wide = throughput(
        concurrency=1000, message_groups=1000, batch_size=10, pool_size=10, times=PROFILE
    )
    assert (wide.limited_by, wide.images_per_second) == ("s3vectors_vectors", 2500.0)
    assert math.isinf(wide.bounds["bedrock_quota"])
    # batch 1 at 0.4 + 0.1 = 0.5 s: Lambda 1000 / 0.5 = 2,000/s; 1,000 PutVectors/s binds
    single = throughput(
        concurrency=1000,
        message_groups=1000,
        batch_size=1,
        pool_size=1,
        times=ServiceTimes(bedrock=0.4, put_vectors=0.1),
    )
    assert (single.limited_by, single.images_per_second) == ("s3vectors_requests", 1000.0)


def test_a_configuration_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        throughput(concurrency=5, message_groups=1, batch_size=0, pool_size=1, times=PROFILE)
