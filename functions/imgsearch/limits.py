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
    lambda_sync_payload_max_bytes: int = 6 * 1024 * 1024
    """A synchronous invocation's request and its response, each (Lambda quotas, "Invocation
    payload"): API Gateway hands the whole HTTP request to the function as one event."""
    # Amazon API Gateway (HTTP API)
    http_api_payload_max_bytes: int = 10 * 1024 * 1024
    http_api_timeout_seconds: int = 30
    """An HTTP API integration's maximum timeout (API Gateway quotas)."""

    @property
    def api_event_envelope_bytes(self) -> int:
        """What the HTTP API event holds besides the body: headers, request context, JSON
        escaping. 64 KiB: API Gateway allows 10 KiB of headers, the rest is margin."""
        return 64 * 1024

    @property
    def api_image_max_bytes(self) -> int:
        """The largest inline query image the search API takes: its base64 (4 bytes per 3)
        inside a JSON body must leave the event under Lambda's synchronous payload."""
        return (self.lambda_sync_payload_max_bytes - self.api_event_envelope_bytes) * 3 // 4


LIMITS = ServiceLimits()


__all__ = ["LIMITS", "ServiceLimits"]
