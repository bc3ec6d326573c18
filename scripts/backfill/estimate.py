"""How long and how much: the dry-run estimate for embedding what a backfill would send.

Everything comes from the config (concurrency, batch size, memory, architecture,
dimension, model) and :data:`imgsearch.pricing.PRICES`; the only free parameter is the
per-image latency (Bedrock call + S3 read + PutVectors), which the operator can pass
from the ``EmbeddingLatency`` metric of a running stack. The assumptions are part of
the result, so the printed numbers say what they rest on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from imgsearch.config import PipelineConfig
from imgsearch.pricing import GIB, PRICES, CostInputs, Prices, cost_for
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
            "cost_usd": {k: round(v, 4) for k, v in self.costs.items()},
            "total_cost_usd": round(self.total_cost, 4),
            "vector_storage_gib": round(self.vector_bytes / GIB, 4),
            "assumptions": self.assumptions,
        }


def estimate(
    work: Workload, cfg: PipelineConfig, *, latency_s: float = 0.5, prices: Prices = PRICES
) -> Estimate:
    """Duration at the stack's concurrency and the AWS cost of embedding ``work``."""
    n = work.images
    # Lambda runs at most embedder_concurrency batches, and a FIFO event source at most
    # one batch per message group; each batch embeds up to embed_pool_size at once.
    per_invocation = min(cfg.batch_size, cfg.embed_pool_size)
    parallel = min(cfg.embedder_concurrency, cfg.message_groups) * per_invocation
    duration = n * latency_s / parallel if n else 0.0
    seconds_per_invocation = latency_s * math.ceil(cfg.batch_size / per_invocation)

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
        f"{latency_s:g} s per image (Bedrock + S3 GET + PutVectors); pass --latency to change",
        f"{parallel} images at once = min(embedder_concurrency {cfg.embedder_concurrency}, "
        f"message_groups {cfg.message_groups}) x min(batch_size {cfg.batch_size}, "
        f"embed_pool_size {cfg.embed_pool_size})",
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
        images_per_second=parallel / latency_s if latency_s else 0.0,
        costs=costs,
        vector_bytes=vector_bytes,
        assumptions=assumptions,
    )
