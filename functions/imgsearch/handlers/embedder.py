"""Embedder Lambda: FIFO queue -> Bedrock -> S3 Vectors.

Thin: builds the clients once per container, hands the batch to
``imgsearch.batch.BatchRunner`` (which converges each object with
``imgsearch.ingest.ObjectConverger``, see ``imgsearch.converge``), then reports:

* exactly one JSON log line per message, with ``outcome`` at the top level
  (``embedded`` | ``unchanged`` | ``deleted`` | ``stale_skipped`` |
  ``permanent_failure`` | ``transient_failure``), ``reason`` for failures, and
  ``bucket``, ``key``, ``vector_key``, ``message_id``;
* EMF metrics named in ``imgsearch.contract.METRICS`` (dimension ``service``;
  ``PermanentFailuresByReason`` also ``reason``);
* the SQS partial-batch response (``imgsearch.batch.partial_batch_response``):
  transient failures (and later messages of the same group) are redelivered,
  everything else is acknowledged. The batch code owns the group rule, so no
  Powertools batch processor second-guesses it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.session import get_session

from imgsearch.batch import BatchItem, BatchRunner, partial_batch_response
from imgsearch.budget import budget_seconds
from imgsearch.config import PipelineConfig
from imgsearch.contract import FAILURE_OUTCOMES, METRICS, OUTCOME_FIELDS
from imgsearch.embeddings import Embedder
from imgsearch.handlers.tracing import lambda_tracer
from imgsearch.ingest import MessageResult, ObjectConverger
from imgsearch.vectors import VectorIndex

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

CFG = PipelineConfig.from_env()

logger = Logger(service=CFG.service_name, level=CFG.log_level)
metrics = Metrics(namespace=CFG.metrics_namespace, service=CFG.service_name)
traced = lambda_tracer(CFG.service_name)

# botocore's session, not boto3's: boto3 would add s3transfer (and multiprocessing) to
# the cold start for upload/download helpers this function never calls.
_AWS = get_session()
_AWS_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)
S3: S3Client = _AWS.create_client("s3", config=_AWS_RETRIES)
S3VECTORS: S3VectorsClient = _AWS.create_client("s3vectors", config=_AWS_RETRIES)
# Bedrock retries are ours (deadline-aware, counted, logged): botocore must not retry too.
BEDROCK: BedrockRuntimeClient = _AWS.create_client(
    "bedrock-runtime",
    config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
)
RUNNER = BatchRunner(
    ObjectConverger(
        CFG,
        S3,
        Embedder(BEDROCK, CFG.model_ref, CFG.dimension),
        VectorIndex(
            S3VECTORS,
            CFG.vector_bucket_name,
            CFG.index_name,
            dimension=CFG.dimension,
            distance_metric=CFG.distance_metric,
        ),
        logger=logger,
    ),
    pool_size=CFG.embed_pool_size,
    logger=logger,
)


def deadline_for(context: Any) -> float:
    """``time.monotonic()`` instant after which no message or Bedrock retry should start."""
    remaining = float(context.get_remaining_time_in_millis()) / 1000.0
    return time.monotonic() + budget_seconds(remaining)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    records: list[dict[str, Any]] = event.get("Records") or []
    items = [
        BatchItem(
            message_id=r["messageId"],
            body=r.get("body") or "",
            group_id=(r.get("attributes") or {}).get("MessageGroupId"),
            receive_count=_receive_count(r),
        )
        for r in records
    ]
    results = RUNNER.run(items, deadline_for(context))
    for item in items:
        _log_outcome(item.message_id, results[item.message_id])
    _emit_metrics(results.values())
    return partial_batch_response(items, results)


def _receive_count(record: dict[str, Any]) -> int:
    """Which delivery this is (SQS ``ApproximateReceiveCount``; 1 if it is missing)."""
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else 1


def _log_outcome(message_id: str, result: MessageResult) -> None:
    """The one structured line per message (schema: ``imgsearch.contract.OUTCOME_FIELDS``;
    parsed by operators, ``imgsearch verify``/``dlq list`` and the local runtime)."""
    f = OUTCOME_FIELDS
    fields = {f.message_id: message_id, **result.fields, f.outcome: result.outcome}
    if result.reason:
        fields[f.reason] = result.reason
        fields[f.detail] = result.detail
    if result.embed_ms is not None:
        fields[f.embed_ms] = round(result.embed_ms, 1)
    if result.retries:
        fields[f.retries] = result.retries
    where = f"s3://{fields.get(f.bucket)}/{fields.get(f.key)}" if f.bucket in fields else message_id
    text = f"{result.outcome} {where}" + (f" ({result.reason})" if result.reason else "")
    if result.outcome in FAILURE_OUTCOMES:
        logger.warning(text, extra=fields)
    else:
        logger.info(text, extra=fields)


def _emit_metrics(results: Iterable[MessageResult]) -> None:
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    retries = 0
    bytes_read = 0
    for result in results:
        counts[result.outcome] += 1
        retries += result.retries
        bytes_read += result.bytes_read
        if result.outcome == "permanent_failure":
            reasons[result.reason or "unknown"] += 1
        if result.outcome == "embedded" and result.embed_ms is not None:
            metrics.add_metric(
                name=METRICS.embedding_latency_ms,
                unit=MetricUnit.Milliseconds,
                value=result.embed_ms,
            )
    for outcome, name in (
        ("embedded", METRICS.images_embedded),
        ("deleted", METRICS.vectors_deleted),
        ("unchanged", METRICS.unchanged_skipped),
        ("metadata_upgraded", METRICS.metadata_upgraded),
        ("stale_skipped", METRICS.stale_skipped),
        ("permanent_failure", METRICS.permanent_failures),
        ("transient_failure", METRICS.transient_failures),
    ):
        if counts[outcome]:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[outcome])
    if retries:
        metrics.add_metric(name=METRICS.transient_retries, unit=MetricUnit.Count, value=retries)
    if bytes_read:
        metrics.add_metric(name=METRICS.bytes_read, unit=MetricUnit.Bytes, value=bytes_read)
    for reason, count in reasons.items():
        with single_metric(
            name=METRICS.permanent_failures_by_reason,
            unit=MetricUnit.Count,
            value=count,
            namespace=CFG.metrics_namespace,
            default_dimensions={"service": CFG.service_name},
        ) as metric:
            metric.add_dimension(name="reason", value=reason)
