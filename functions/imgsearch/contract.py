"""The contract between the stack, the Lambdas, the scripts and the local cloud.

What one side writes and another reads lives here once: the Lambda handler strings,
the CloudFormation output keys, the CloudWatch metric names, and the schema of the
embedder's one log line per message (its outcomes and field names). Renaming any of
these breaks a reader, so none is spelled anywhere else. Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Literal, get_args

# --------------------------------------------------------------------------- handlers

ROUTER_HANDLER = "imgsearch.handlers.router.lambda_handler"
EMBEDDER_HANDLER = "imgsearch.handlers.embedder.lambda_handler"
SEARCH_HANDLER = "imgsearch.handlers.search.lambda_handler"
"""Lambda handler strings (asset root ``functions/``): the stack and the local runtime."""


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class OutputKeys:
    """The stack's CloudFormation output keys; the scripts find resources by them."""

    source_bucket_name: str = "SourceBucketName"
    inventory_bucket_name: str = "InventoryBucketName"
    queue_url: str = "QueueUrl"
    dlq_url: str = "DlqUrl"
    router_dlq_url: str = "RouterDlqUrl"
    vector_bucket_name: str = "VectorBucketName"
    index_name: str = "IndexName"
    index_arn: str = "IndexArn"
    dashboard_url: str = "DashboardUrl"
    embedder_function_name: str = "EmbedderFunctionName"
    router_function_name: str = "RouterFunctionName"
    deployed_config: str = "DeployedConfig"
    """JSON of the deployed settings the scripts must share (``blueprint.DEPLOYED_FIELDS``)."""
    search_api_url: str = "SearchApiUrl"
    """The search API's base URL (absent with ``search_api=false``)."""
    search_function_name: str = "SearchFunctionName"


OUTPUTS = OutputKeys()
OUTPUT_KEYS: tuple[str, ...] = astuple(OUTPUTS)


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricNames:
    """The pipeline's own CloudWatch metrics (EMF, namespace ``metrics_namespace``).

    All carry the dimension ``service`` (= ``service_name``); ``permanent_failures_by_reason``
    also carries ``reason``. The embedder emits them, the dashboard and ``status`` read them.
    """

    images_embedded: str = "ImagesEmbedded"
    vectors_deleted: str = "VectorsDeleted"
    unchanged_skipped: str = "UnchangedSkipped"
    metadata_upgraded: str = "MetadataUpgraded"
    """Current vectors rewritten with metadata keys added since (no model call)."""
    stale_skipped: str = "StaleSkipped"
    permanent_failures: str = "PermanentFailures"
    permanent_failures_by_reason: str = "PermanentFailuresByReason"
    transient_retries: str = "TransientRetries"
    transient_failures: str = "TransientFailures"
    """Messages handed back to SQS for redelivery (throttling that outlasted the budget...)."""
    embedding_latency_ms: str = "EmbeddingLatency"
    bytes_read: str = "BytesRead"
    messages_routed: str = "MessagesRouted"
    search_model_calls: str = "SearchModelCalls"
    """Bedrock calls made by the search API (text and image queries; ``like`` makes none)."""


METRICS = MetricNames()


# --------------------------------------------------------------------------- outcome log

Outcome = Literal[
    "embedded",
    "unchanged",
    "metadata_upgraded",
    "deleted",
    "stale_skipped",
    "permanent_failure",
    "transient_failure",
]
"""What one message did; the ``outcome`` field of the embedder's log line.

``metadata_upgraded``: the vector was current but lacked a metadata key added since it
was written; it was rewritten from its stored data (no model call, ``imgsearch.upgrade``)."""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
SUCCESS_OUTCOMES: frozenset[str] = frozenset(OUTCOMES) - {"transient_failure"}
"""Outcomes after which the message is acknowledged (deleted from the queue)."""
FAILURE_OUTCOMES: frozenset[str] = frozenset({"permanent_failure", "transient_failure"})


@dataclass(frozen=True)
class OutcomeFields:
    """Field names of the one structured log line per message (top level of the JSON)."""

    outcome: str = "outcome"
    reason: str = "reason"
    detail: str = "detail"
    message_id: str = "message_id"
    bucket: str = "bucket"
    key: str = "key"
    vector_key: str = "vector_key"
    etag: str = "etag"
    kind: str = "kind"
    origin: str = "origin"
    embed_ms: str = "embed_ms"
    retries: str = "retries"
    earlier_vector_kept: str = "earlier_vector_kept"
    """True on a permanent failure that left an earlier version's vector in place (a model
    answer is no proof the new bytes are bad); the accounting allows that vector."""
    metadata_dropped: str = "metadata_dropped"
    """Filterable keys the long-key rule left out of a new vector (``imgsearch.vectors``),
    e.g. ``["folders"]``: that image is not found by those filters."""
    metadata_added: str = "metadata_added"
    """The keys a ``metadata_upgraded`` outcome added to the stored vector."""


OUTCOME_FIELDS = OutcomeFields()


__all__ = [
    "EMBEDDER_HANDLER",
    "FAILURE_OUTCOMES",
    "METRICS",
    "OUTCOMES",
    "OUTCOME_FIELDS",
    "OUTPUTS",
    "OUTPUT_KEYS",
    "ROUTER_HANDLER",
    "SEARCH_HANDLER",
    "SUCCESS_OUTCOMES",
    "MetricNames",
    "Outcome",
    "OutcomeFields",
    "OutputKeys",
]
