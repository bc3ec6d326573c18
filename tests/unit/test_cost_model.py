"""The cost model against hand-computed bills (list prices in ``imgsearch.pricing``).

Each expected figure was worked out by hand from the price list and is written as a
literal, so a change to the arithmetic (or to a price) shows up here.
"""

from __future__ import annotations

import pytest

from imgsearch.pricing import CostInputs, cost_for, cost_per_million, lambda_gb_seconds_per_image


def test_batch_of_one_pays_the_put_minimum_per_image() -> None:
    # Defaults: nova, batch 1, 0.5 s per invocation at 512 MB arm64, 1024-d vectors.
    work = CostInputs("nova", 1, 0.5, 512, "arm64", vector_bytes=4476, images_per_send=10)
    split = cost_per_million(work)
    assert split["bedrock"] == pytest.approx(60.00)
    # 250,000 GB-s at $0.0000133334 + 1M requests at $0.20
    assert split["lambda"] == pytest.approx(3.53335)
    # 100,000 sends + 1M receives + 1M deletes = 2.1M requests at $0.50
    assert split["sqs"] == pytest.approx(1.05)
    # 1M requests x 128 KiB = 122.0703125 GiB at $0.20
    assert split["s3vectors_put"] == pytest.approx(24.4140625)
    assert split["s3_get"] == pytest.approx(0.40)
    assert lambda_gb_seconds_per_image(work) == pytest.approx(0.25)


def test_batch_of_ten_above_the_minimum_pays_its_bytes() -> None:
    work = CostInputs("nova", 10, 0.6, 1024, "x86_64", vector_bytes=20_000, images_per_send=10)
    split = cost_per_million(work)
    assert split["bedrock"] == pytest.approx(60.00)
    # 100,000 invocations x 0.6 s x 1 GB = 60,000 GB-s at $0.0000166667, + $0.02
    assert split["lambda"] == pytest.approx(1.020002)
    # 100,000 sends + 100,000 receives + 100,000 deletes
    assert split["sqs"] == pytest.approx(0.15)
    # 100,000 requests x 200,000 bytes = 18.62645149 GiB at $0.20
    assert split["s3vectors_put"] == pytest.approx(3.725290298)
    assert split["s3_get"] == pytest.approx(0.40)
    assert lambda_gb_seconds_per_image(work) == pytest.approx(0.06)


def test_small_batches_still_pay_the_minimum_and_the_last_batch_counts() -> None:
    work = CostInputs("marengo", 10, 0.5, 512, "arm64", vector_bytes=4416, images_per_send=1)
    split = cost_per_million(work)
    assert split["bedrock"] == pytest.approx(70.00)
    # 44,160 bytes per request is under 128 KiB: 100,000 x 128 KiB = 12.20703125 GiB
    assert split["s3vectors_put"] == pytest.approx(2.44140625)
    # 1M single sends + 200,000 event-source requests
    assert split["sqs"] == pytest.approx(0.60)
    # 25 images in batches of 10 are 3 PutVectors requests at the minimum
    assert cost_for(25, work)["s3vectors_put"] == pytest.approx(0.0000732421875)
