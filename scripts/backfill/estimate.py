"""How long and how much: the dry-run estimate for embedding what a backfill would send.

Everything comes from the config (concurrency, message groups, batch size, pool,
memory, architecture, dimension, model) and :mod:`imgsearch.pricing`: its cost model and
its throughput model (:func:`~imgsearch.pricing.throughput`, the one ``bench_pipeline``
measures against). The free parameters are the per-image latency (Bedrock call + S3
read + unchanged check), which the operator can pass from the ``EmbeddingLatency``
metric of a running stack, the PutVectors latency (once per batch), and the account's
Bedrock quota for the model (requests per minute, from Service Quotas). The result
names the bound that limits the run; the assumptions are part of it, so the printed
numbers say what they rest on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from imgsearch.config import PipelineConfig
from imgsearch.pricing import (
    GIB,
    INDEX_WRITE_REQUESTS_PER_SECOND,
    INDEX_WRITE_VECTORS_PER_SECOND,
    PRICES,
    CostInputs,
    Prices,
    ServiceTimes,
    cost_for,
    throughput,
)
from scripts.common.console import format_duration

VECTOR_KEY_BYTES = 64
"""Vector keys are SHA-256 hex digests (``imgsearch.messages.vector_key``)."""
METADATA_OVERHEAD_BYTES = 256
"""Metadata besides the key-sized fields: bucket, etag, size, format, dimensions, time."""


@dataclass(frozen=True)
class Workload:
    images: int
    image_bytes: int = 0
    key_bytes: int = 0
    """Total UTF-8 length of the selected keys (metadata stores the key twice)."""


@dataclass(frozen=True)
class Estimate:
    images: int
    parallel_embeddings: int
    latency_s: float
    duration_s: float
    images_per_second: float
    costs: dict[str, float]
    vector_bytes: int
    limited_by: str = "lambda"
    """The bound that sets the rate: ``lambda``, ``bedrock_quota``, ``s3vectors_requests``
    or ``s3vectors_vectors`` (see :func:`imgsearch.pricing.throughput`)."""
    bounds: dict[str, float] = field(default_factory=dict)
    """Images per second each bound allows on its own (``inf``: not given)."""
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return sum(self.costs.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "parallel_embeddings": self.parallel_embeddings,
            "assumed_latency_s": self.latency_s,
            "duration_s": round(self.duration_s, 1),
            "duration": format_duration(self.duration_s),
            "images_per_second": round(self.images_per_second, 2),
            "limited_by": self.limited_by,
            "bounds_images_per_second": {
                k: (round(v, 2) if math.isfinite(v) else "not given")
                for k, v in self.bounds.items()
            },
            "cost_usd": {k: round(v, 4) for k, v in self.costs.items()},
            "total_cost_usd": round(self.total_cost, 4),
            "vector_storage_gib": round(self.vector_bytes / GIB, 4),
            "assumptions": self.assumptions,
        }


BOUND_NAMES = {
    "lambda": "Lambda: concurrency x images per invocation at once / per-image time",
    "bedrock_quota": "the account's Bedrock quota for the model (requests per minute)",
    "s3vectors_requests": f"S3 Vectors: {INDEX_WRITE_REQUESTS_PER_SECOND:,} write requests/s "
    "per index (one PutVectors per batch)",
    "s3vectors_vectors": f"S3 Vectors: {INDEX_WRITE_VECTORS_PER_SECOND:,} vectors/s per index",
}


def estimate(
    work: Workload,
    cfg: PipelineConfig,
    *,
    latency_s: float = 0.5,
    put_latency_s: float = 0.0,
    bedrock_rpm: float | None = None,
    prices: Prices = PRICES,
) -> Estimate:
    """Duration at the stack's settings, the bound that sets it, and the AWS cost of ``work``.

    ``latency_s`` is one image's calls (Bedrock + S3 GET + GetVectors), ``put_latency_s``
    a batch's PutVectors, ``bedrock_rpm`` the model's InvokeModel quota (None: unknown).
    """
    n = work.images
    # Lambda runs at most embedder_concurrency batches, and a FIFO event source at most
    # one batch per message group; each batch embeds up to embed_pool_size at once.
    per_invocation = min(cfg.batch_size, cfg.embed_pool_size)
    parallel = min(cfg.embedder_concurrency, cfg.message_groups) * per_invocation
    rate = throughput(
        concurrency=cfg.embedder_concurrency,
        message_groups=cfg.message_groups,
        batch_size=cfg.batch_size,
        pool_size=cfg.embed_pool_size,
        times=ServiceTimes(bedrock=latency_s, put_vectors=put_latency_s),
        bedrock_rpm=bedrock_rpm,
    )
    duration = n / rate.images_per_second if n and math.isfinite(rate.images_per_second) else 0.0
    seconds_per_invocation = rate.seconds_per_invocation

    avg_key = work.key_bytes / n if n else 0.0
    per_vector = cfg.dimension * 4 + VECTOR_KEY_BYTES + round(2 * avg_key) + METADATA_OVERHEAD_BYTES
    vector_bytes = n * per_vector
    split = cost_for(
        n,
        CostInputs(
            model_family=cfg.model.family,
            batch_size=cfg.batch_size,
            seconds_per_invocation=seconds_per_invocation,
            memory_mb=cfg.embedder_memory_mb,
            architecture=cfg.architecture,
            vector_bytes=per_vector,
            images_per_send=10,  # the backfill sends with SendMessageBatch
        ),
        prices,
    )
    # The printed order predates the shared cost model; monthly storage is ours alone.
    costs = {
        "bedrock": split["bedrock"],
        "s3vectors_put": split["s3vectors_put"],
        "s3vectors_storage_per_month": vector_bytes / GIB * prices.s3vectors_storage_per_gb_month,
        "lambda": split["lambda"],
        "sqs": split["sqs"],
        "s3_get": split["s3_get"],
    }
    assumptions = [
        f"{latency_s:g} s per image (Bedrock + S3 GET + GetVectors); pass --latency to change",
        f"{put_latency_s:g} s per PutVectors, one per batch; pass --put-latency to change",
        f"{parallel} images at once = min(embedder_concurrency {cfg.embedder_concurrency}, "
        f"message_groups {cfg.message_groups}) x min(batch_size {cfg.batch_size}, "
        f"embed_pool_size {cfg.embed_pool_size})",
        f"limited by {BOUND_NAMES[rate.limited_by]}: {rate.images_per_second:,.1f} images/s"
        + ("" if bedrock_rpm else "; Bedrock quota not given (pass --bedrock-rpm)"),
        "no Bedrock throttling, no retries, no images already indexed (those are skipped "
        "without a Bedrock call and cost less)",
        f"one PutVectors per Lambda batch, billed at least "
        f"{prices.s3vectors_put_min_billed_bytes // 1024} KiB per request",
        "list prices, us-east-1, on demand; Lambda's idle SQS polling is not counted",
    ]
    return Estimate(
        images=n,
        parallel_embeddings=parallel,
        latency_s=latency_s,
        duration_s=duration,
        images_per_second=rate.images_per_second,
        costs=costs,
        vector_bytes=vector_bytes,
        limited_by=rate.limited_by,
        bounds=rate.bounds,
        assumptions=assumptions,
    )
