"""Hard limits of the AWS services, enforced in one place by the core (and the local cloud)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceLimits:
    """Hard limits of the AWS services, enforced in one place by the core."""

    # Amazon S3 Vectors (GA)
    put_vectors_max_vectors: int = 500
    put_vectors_max_request_bytes: int = 20 * 1024 * 1024
    filterable_metadata_max_bytes: int = 2 * 1024
    total_metadata_max_bytes: int = 40 * 1024
    metadata_max_keys: int = 50
    non_filterable_keys_max: int = 10
    vector_key_max_chars: int = 1024
    query_top_k_max: int = 10_000
    """``topK`` of one ``QueryVectors`` (10,000 since June 2026, 100 before; S3 User Guide,
    "Limitations and restrictions"). Above the page size, results come in pages."""
    query_page_max_results: int = 100
    """Results per ``QueryVectors`` page: not published ("when topK exceeds the page size,
    results are returned across multiple pages", S3 User Guide, "Querying vectors"), so
    callers follow ``nextToken`` whatever the page size; the local cloud pages at 100."""
    get_vectors_max_keys: int = 100
    delete_vectors_max_keys: int = 500
    # Amazon Bedrock
    invoke_model_max_body_bytes: int = 25 * 1000 * 1000
    # Amazon SQS
    sqs_batch_max_entries: int = 10
    sqs_message_max_bytes: int = 256 * 1024
    sqs_dedup_window_seconds: int = 300
    # AWS Lambda
    lambda_min_event_source_max_concurrency: int = 2
    lambda_min_unreserved_concurrency: int = 10
    """Lambda refuses a reservation that leaves less than this unreserved in the account."""


LIMITS = ServiceLimits()


__all__ = ["LIMITS", "ServiceLimits"]
