"""List prices and the throughput model for estimates (the backfill's dry run, benchmarks).

:func:`cost_for` splits a run's bill by service; :func:`throughput` says how many images
per second a configuration reaches and which bound holds it there (Lambda concurrency x
per-invocation parallelism over the per-image time, the Bedrock quota, S3 Vectors' write
limits per index). ``bench.bench_pipeline`` and ``backfill --dry-run`` both use them.

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


INDEX_WRITE_REQUESTS_PER_SECOND = 1000
"""PutVectors + DeleteVectors requests per second per vector index (S3 User Guide, S3
Vectors "Limitations and restrictions" and "S3 Vectors best practices")."""
INDEX_WRITE_VECTORS_PER_SECOND = 2500
"""Vectors inserted + deleted per second per vector index (same pages)."""


@dataclass(frozen=True)
class ServiceTimes:
    """Seconds per call of each service the embedder waits on for one image."""

    bedrock: float
    s3_get: float = 0.0
    get_vectors: float = 0.0
    """The unchanged check: one GetVectors per image."""
    put_vectors: float = 0.0
    """One PutVectors per batch (``imgsearch.batch``), not per image."""

    @property
    def per_image(self) -> float:
        """One image's calls, one after the other (the write is the batch's)."""
        return self.bedrock + self.s3_get + self.get_vectors


@dataclass(frozen=True)
class Throughput:
    """Images per second a configuration reaches and what holds it there."""

    images_per_second: float
    limited_by: str
    bounds: dict[str, float]
    """Images per second each limit allows on its own (``inf``: no limit given)."""
    seconds_per_invocation: float
    """One full batch's time: its images in waves of ``pool``, then one PutVectors."""


def throughput(
    *,
    concurrency: int,
    message_groups: int,
    batch_size: int,
    pool_size: int,
    times: ServiceTimes,
    bedrock_rpm: float | None = None,
) -> Throughput:
    """The steady rate of a configuration: the least of its bounds.

    ``lambda``: at most ``min(concurrency, message_groups)`` invocations run (a FIFO event
    source runs one batch per group at a time), each embedding ``min(batch, pool)`` images
    at once, so a batch takes ``ceil(batch / pool)`` per-image times plus its PutVectors.
    ``bedrock_quota``: ``bedrock_rpm`` InvokeModel requests per minute (None: not given).
    ``s3vectors_requests`` / ``s3vectors_vectors``: the index's write limits, with one
    PutVectors per batch.
    """
    if min(concurrency, message_groups, batch_size, pool_size) < 1:
        raise ValueError(
            "concurrency, message_groups, batch_size and pool_size must be >= 1 "
            f"(got {concurrency}, {message_groups}, {batch_size}, {pool_size})"
        )
    waves = math.ceil(batch_size / min(batch_size, pool_size))
    invocation = waves * times.per_image + times.put_vectors
    running = min(concurrency, message_groups)
    bounds = {
        "lambda": running * batch_size / invocation if invocation > 0 else math.inf,
        "bedrock_quota": bedrock_rpm / 60 if bedrock_rpm else math.inf,
        "s3vectors_requests": float(INDEX_WRITE_REQUESTS_PER_SECOND * batch_size),
        "s3vectors_vectors": float(INDEX_WRITE_VECTORS_PER_SECOND),
    }
    limited_by = min(bounds, key=lambda name: bounds[name])
    return Throughput(bounds[limited_by], limited_by, bounds, invocation)


__all__ = [
    "GIB",
    "INDEX_WRITE_REQUESTS_PER_SECOND",
    "INDEX_WRITE_VECTORS_PER_SECOND",
    "PRICES",
    "CostInputs",
    "Prices",
    "ServiceTimes",
    "Throughput",
    "cost_for",
    "cost_per_million",
    "lambda_gb_seconds_per_image",
    "throughput",
]
