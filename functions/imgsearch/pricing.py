"""List prices for estimates (the backfill's dry run, the benchmarks).

Not part of the Lambda asset: ``infra.bundling`` leaves this module out, and an
import-linter contract keeps the handlers from importing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """On-demand list prices (USD, us-east-1) used only for the backfill estimate."""

    bedrock_nova_image_embedding: float = 0.00006
    bedrock_marengo_image_embedding: float = 0.00007
    s3vectors_put_per_gb: float = 0.20
    s3vectors_put_min_billed_bytes: int = 128 * 1024
    """Each PutVectors request is billed at least this much logical data (so one vector
    per request costs like 128 KiB); reported by third-party analyses of S3 Vectors
    pricing and consistent with AWS's advice to batch puts for cost. Estimate only."""
    s3vectors_storage_per_gb_month: float = 0.06
    lambda_gb_second_arm64: float = 0.0000133334
    lambda_gb_second_x86_64: float = 0.0000166667
    lambda_per_million_requests: float = 0.20
    sqs_fifo_per_million_requests: float = 0.50
    s3_get_per_thousand: float = 0.0004


PRICES = Prices()

GIB = 1024**3


@dataclass(frozen=True)
class CostInputs:
    """What one embedder invocation costs, independent of the number of images.

    ``seconds_per_invocation`` is billed Lambda duration (handler time) of one batch of
    ``batch_size`` images; ``vector_bytes`` one vector's logical size (dimension x 4
    bytes of float32 plus key and metadata); ``images_per_send`` how many messages one
    SQS send request carries (10 for SendMessageBatch, 1 for SendMessage).
    """

    model_family: str
    batch_size: int
    seconds_per_invocation: float
    memory_mb: int
    architecture: str
    vector_bytes: int
    images_per_send: int = 10


def cost_for(images: int, work: CostInputs, prices: Prices = PRICES) -> dict[str, float]:
    """USD to embed ``images`` images, split by service (full batches but the last).

    Billing facts, from the AWS pricing pages: Bedrock bills per input image; Lambda
    bills GB-seconds (duration x memory/1024) plus a per-request fee; SQS bills every
    API request (send, receive, delete; a batch of up to 10 is one request); S3 Vectors
    bills PutVectors by logical bytes, at least ``s3vectors_put_min_billed_bytes`` per
    request; S3 bills per GET. Storage is left out: it is per month, not per image.
    """
    invocations = math.ceil(images / work.batch_size)
    image_price = (
        prices.bedrock_nova_image_embedding
        if work.model_family == "nova"
        else prices.bedrock_marengo_image_embedding
    )
    gb_second = (
        prices.lambda_gb_second_arm64
        if work.architecture == "arm64"
        else prices.lambda_gb_second_x86_64
    )
    put_billed = invocations * max(
        prices.s3vectors_put_min_billed_bytes, work.batch_size * work.vector_bytes
    )
    # Lambda's event source: one ReceiveMessage and one DeleteMessageBatch per batch.
    sqs_requests = math.ceil(images / work.images_per_send) + 2 * invocations
    return {
        "bedrock": images * image_price,
        "lambda": invocations * work.seconds_per_invocation * work.memory_mb / 1024 * gb_second
        + invocations / 1e6 * prices.lambda_per_million_requests,
        "sqs": sqs_requests / 1e6 * prices.sqs_fifo_per_million_requests,
        "s3vectors_put": put_billed / GIB * prices.s3vectors_put_per_gb,
        "s3_get": images / 1000 * prices.s3_get_per_thousand,
    }


def cost_per_million(work: CostInputs, prices: Prices = PRICES) -> dict[str, float]:
    """USD per 1,000,000 images, split by service (the benchmarks' and docs' unit)."""
    return cost_for(1_000_000, work, prices)


def lambda_gb_seconds_per_image(work: CostInputs) -> float:
    """Billed Lambda GB-seconds per image: a batch's duration shared by its images."""
    return work.seconds_per_invocation * work.memory_mb / 1024 / work.batch_size


__all__ = [
    "GIB",
    "PRICES",
    "CostInputs",
    "Prices",
    "cost_for",
    "cost_per_million",
    "lambda_gb_seconds_per_image",
]
