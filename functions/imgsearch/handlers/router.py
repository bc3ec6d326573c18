"""Router Lambda: S3 event notifications -> messages on the FIFO queue.

Thin: selects keys (prefixes/suffixes), builds one message per object event, and
sends them with ``SendMessageBatch`` of 10 (``imgsearch.enqueue``). If any message
still cannot be sent after retries, the invocation fails so that Lambda's
asynchronous retries (and then the router's dead-letter queue) keep the event:
re-sent messages collapse in SQS's deduplication window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.session import get_session

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import METRICS
from imgsearch.enqueue import messages_from_event, send_messages
from imgsearch.handlers.tracing import lambda_tracer
from imgsearch.messages import vector_key
from imgsearch.selection import KeySelection

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

CFG = PipelineConfig.from_env()
if not CFG.queue_url:
    raise ConfigError(
        "IMGSEARCH_QUEUE_URL is empty: the router needs the embed queue's URL "
        "(the stack sets it; locally, export it)"
    )
SELECTION = KeySelection.from_config(CFG)

logger = Logger(service=CFG.service_name, level=CFG.log_level)
metrics = Metrics(namespace=CFG.metrics_namespace, service=CFG.service_name)
traced = lambda_tracer(CFG.service_name)

# botocore's session, not boto3's: boto3 adds s3transfer to the cold start for nothing.
SQS: SQSClient = get_session().create_client(
    "sqs", config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)
)


class UnsentMessages(RuntimeError):
    """Some messages could not be queued; failing the invocation keeps the S3 event."""


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    messages, skipped = messages_from_event(event, SELECTION)
    for skip in skipped:
        logger.info(
            f"skipped: {skip.reason}",
            extra={
                "routing": "skipped",
                "reason": skip.reason,
                "detail": skip.detail,
                "bucket": skip.bucket,
                "key": skip.key,
            },
        )
    report = send_messages(SQS, CFG.queue_url, messages, groups=CFG.message_groups)
    metrics.add_metric(name=METRICS.messages_routed, unit=MetricUnit.Count, value=report.sent)
    failed_bodies = {f["MessageBody"] for f in report.failed}
    for msg in messages:
        sent = msg.to_json() not in failed_bodies
        logger.info(
            f"{'routed' if sent else 'not sent'}: {msg.kind} s3://{msg.bucket}/{msg.key}",
            extra={
                "routing": "routed" if sent else "failed",
                "bucket": msg.bucket,
                "key": msg.key,
                "vector_key": vector_key(msg.bucket, msg.key),
                "kind": msg.kind,
                "etag": msg.etag,
            },
        )
    if report.failed:
        codes = sorted({f["Code"] for f in report.failed})
        raise UnsentMessages(
            f"{len(report.failed)} of {len(messages)} messages could not be queued "
            f"({', '.join(codes)}); the event will be retried"
        )
    return {"routed": report.sent, "skipped": len(skipped)}
