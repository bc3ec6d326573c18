"""List prices for estimates (the backfill's dry run, the benchmarks).

Not part of the Lambda asset: ``infra.bundling`` leaves this module out, and an
import-linter contract keeps the handlers from importing it.
"""

from __future__ import annotations

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


__all__ = ["PRICES", "Prices"]
