"""The dry run's estimate: the same model as the benchmark, and the bound that limits it.

Expected figures are computed by hand in the comments and written as literals.
"""

from __future__ import annotations

import pytest

from imgsearch.config import load_config
from scripts.backfill.estimate import Workload, estimate


def test_ten_million_images_at_concurrency_5_batch_10_pool_10() -> None:
    cfg = load_config().replace(
        embedder_concurrency=5, message_groups=64, batch_size=10, embed_pool_size=10
    )
    est = estimate(Workload(10_000_000), cfg, latency_s=0.45, put_latency_s=0.08)
    # one batch: 0.45 + 0.08 = 0.53 s; 5 x 10 / 0.53 = 94.34 images/s;
    # 10,000,000 / 94.34 = 106,000 s (29.4 hours)
    assert est.limited_by == "lambda"
    assert est.images_per_second == pytest.approx(94.339623, rel=1e-6)
    assert est.duration_s == pytest.approx(106_000.0)
    out = est.as_dict()
    assert out["limited_by"] == "lambda"
    assert out["bounds_images_per_second"] == {
        "lambda": 94.34,
        "bedrock_quota": "not given",
        "s3vectors_requests": 10_000.0,  # 1,000 requests/s x 10 vectors each
        "s3vectors_vectors": 2_500.0,
    }


def test_the_quota_is_named_when_it_binds() -> None:
    cfg = load_config().replace(
        embedder_concurrency=20, message_groups=64, batch_size=10, embed_pool_size=10
    )
    est = estimate(Workload(864_000), cfg, latency_s=0.45, put_latency_s=0.08, bedrock_rpm=6000)
    # Lambda: 20 x 10 / 0.53 = 377.4/s; the quota: 6,000 / 60 = 100/s binds;
    # 864,000 images / 100 per s = 8,640 s
    assert est.limited_by == "bedrock_quota"
    assert est.duration_s == pytest.approx(8640.0)
    assert any("limited by the account's Bedrock quota" in a for a in est.assumptions)


def test_lambda_is_billed_for_the_batchs_waves_and_its_put() -> None:
    cfg = load_config().replace(
        embedder_concurrency=5,
        batch_size=10,
        embed_pool_size=5,
        embedder_memory_mb=1024,
        architecture="arm64",
    )
    est = estimate(Workload(1000), cfg, latency_s=0.5, put_latency_s=0.1)
    # a batch: 2 waves x 0.5 + 0.1 = 1.1 s; 100 batches x 1.1 s x 1 GB = 110 GB-s
    # at $0.0000133334 = $0.001466674, + 100 requests at $0.20 per 1M = $0.00002
    assert est.costs["lambda"] == pytest.approx(0.001486674)
    # 5 x 10 / 1.1 = 45.45 images/s: 1000 images in 22 s
    assert est.duration_s == pytest.approx(22.0)
