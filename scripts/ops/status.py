"""``status``: where the pipeline is — backlog, in flight, DLQ, throughput, ETA.

Queue depths come from SQS ``GetQueueAttributes`` (exact enough, and instant). Work done
comes from the pipeline's own CloudWatch metrics (``imgsearch.contract.METRICS``, emitted
by the embedder as EMF; in the local cloud the runtime forwards the same EMF lines to
its CloudWatch, so this code reads both the same way). The age of the oldest message is
SQS's own CloudWatch metric ``AWS/SQS ApproximateAgeOfOldestMessage`` (SQS publishes it
once a minute; a queue idle for a while has no recent datapoint and the age is shown
as unknown rather than guessed).

ETA = backlog / recent throughput, where throughput counts every message the embedder
finished (embedded, unchanged, deleted, stale, permanent failure) over the last
:data:`RATE_WINDOW_SECONDS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from imgsearch.config import PipelineConfig
from imgsearch.contract import METRICS
from scripts.common.console import format_duration, render_pairs

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType

HOUR = 3600
RATE_WINDOW_SECONDS = 600
"""Throughput for the ETA is measured over this recent window."""
SQS_NAMESPACE = "AWS/SQS"
OLDEST_AGE_METRIC = "ApproximateAgeOfOldestMessage"
QUEUE_ATTRIBUTES: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
PROCESSED_METRICS: tuple[str, ...] = (
    METRICS.images_embedded,
    METRICS.unchanged_skipped,
    METRICS.metadata_upgraded,
    METRICS.vectors_deleted,
    METRICS.stale_skipped,
    METRICS.permanent_failures,
)
"""Every outcome that takes a message off the queue (a transient failure does not)."""


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass
class Status:
    time: str
    queue: QueueDepth
    dlq: QueueDepth
    oldest_message_age_seconds: float | None
    oldest_message_age_source: str
    last_hour: dict[str, float]
    """Sum of each pipeline metric over the last hour (0 when nothing was emitted)."""
    rate_per_second: float
    eta_seconds: float | None
    eta_note: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["queue"]["total"] = self.queue.total
        out["dlq"]["total"] = self.dlq.total
        return out

    def render(self) -> str:
        hour = self.last_hour
        pairs: list[tuple[str, Any]] = [
            ("time", self.time),
            ("queue", self.queue.name),
            ("  waiting", self.queue.visible),
            ("  in flight", self.queue.in_flight),
            ("  delayed", self.queue.delayed),
            (
                "  oldest message",
                (
                    f"{format_duration(self.oldest_message_age_seconds)} "
                    f"({self.oldest_message_age_source})"
                    if self.oldest_message_age_seconds is not None
                    else f"unknown ({self.oldest_message_age_source})"
                ),
            ),
            ("dead-letter queue", f"{self.dlq.total} message(s) in {self.dlq.name}"),
            ("last hour", ""),
            ("  images embedded", int(hour.get(METRICS.images_embedded, 0))),
            ("  unchanged (skipped)", int(hour.get(METRICS.unchanged_skipped, 0))),
            ("  metadata upgraded", int(hour.get(METRICS.metadata_upgraded, 0))),
            ("  vectors deleted", int(hour.get(METRICS.vectors_deleted, 0))),
            ("  permanent failures", int(hour.get(METRICS.permanent_failures, 0))),
            ("  transient retries", int(hour.get(METRICS.transient_retries, 0))),
            ("throughput", f"{self.rate_per_second * 60:.1f} messages/min (last 10 min)"),
            (
                "ETA for the backlog",
                f"{format_duration(self.eta_seconds)} ({self.eta_note})"
                if self.eta_seconds is not None
                else self.eta_note,
            ),
        ]
        lines = render_pairs(pairs)
        if self.dlq.total:
            lines += (
                "\n\nmessages are in the DLQ: `imgsearch dlq list` shows why, "
                "`imgsearch dlq redrive` retries them"
            )
        return lines


# --------------------------------------------------------------------------- collecting


def queue_depth(sqs: SQSClient, url: str) -> QueueDepth:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_ATTRIBUTES))[
        "Attributes"
    ]
    return QueueDepth(
        name=url.rstrip("/").rsplit("/", 1)[-1],
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def pipeline_metrics(
    cloudwatch: CloudWatchClient, cfg: PipelineConfig, now: datetime
) -> tuple[dict[str, float], float]:
    """(sum of each metric over the last hour, messages finished per second recently)."""
    names = sorted({*PROCESSED_METRICS, METRICS.transient_retries})
    queries = [
        {
            "Id": f"m{i}",
            "Label": name,
            "MetricStat": {
                "Metric": {
                    "Namespace": cfg.metrics_namespace,
                    "MetricName": name,
                    "Dimensions": [{"Name": "service", "Value": cfg.service_name}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for i, name in enumerate(names)
    ]
    series = _metric_data(cloudwatch, queries, now - timedelta(seconds=HOUR), now)
    totals = {name: 0.0 for name in names}
    recent = 0.0
    first_recent: datetime | None = None
    window_start = now - timedelta(seconds=RATE_WINDOW_SECONDS)
    for i, name in enumerate(names):
        for stamp, value in series.get(f"m{i}", []):
            totals[name] += value
            if name in PROCESSED_METRICS and stamp >= window_start and value:
                recent += value
                first_recent = stamp if first_recent is None else min(first_recent, stamp)
    rate = 0.0
    if first_recent is not None:
        # From the first busy minute in the window to now (a run that began two minutes
        # ago is not diluted over ten), at least one 60 s period.
        span = max(60.0, (now - first_recent).total_seconds() + 60.0)
        rate = recent / min(span, float(RATE_WINDOW_SECONDS))
    return totals, rate


def oldest_message_age(
    cloudwatch: CloudWatchClient, queue_name: str, now: datetime
) -> tuple[float | None, str]:
    """(seconds, where it came from) from SQS's CloudWatch metric; None if no datapoint."""
    query = {
        "Id": "age",
        "MetricStat": {
            "Metric": {
                "Namespace": SQS_NAMESPACE,
                "MetricName": OLDEST_AGE_METRIC,
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
        "ReturnData": True,
    }
    points = _metric_data(cloudwatch, [query], now - timedelta(minutes=15), now).get("age", [])
    if not points:
        return None, f"no {SQS_NAMESPACE} {OLDEST_AGE_METRIC} datapoint in the last 15 min"
    stamp, value = max(points)
    return value, f"CloudWatch {SQS_NAMESPACE}, minute of {stamp:%H:%M}Z"


def eta(backlog: int, rate: float) -> tuple[float | None, str]:
    if backlog == 0:
        return 0.0, "the queue is empty"
    if rate <= 0:
        return None, (
            f"unknown: {backlog} message(s) waiting but none finished in the last "
            f"{RATE_WINDOW_SECONDS // 60} min"
        )
    return backlog / rate, f"{backlog} message(s) at the recent rate"


def collect(
    cfg: PipelineConfig,
    *,
    sqs: SQSClient,
    cloudwatch: CloudWatchClient,
    queue_url: str,
    dlq_url: str,
    now: datetime | None = None,
) -> Status:
    now = now or datetime.now(UTC)
    queue = queue_depth(sqs, queue_url)
    dlq = queue_depth(sqs, dlq_url)
    totals, rate = pipeline_metrics(cloudwatch, cfg, now)
    age, source = oldest_message_age(cloudwatch, queue.name, now)
    if age is None and queue.total == 0:
        age, source = 0.0, "the queue is empty"
    eta_seconds, eta_note = eta(queue.total, rate)
    return Status(
        time=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        queue=queue,
        dlq=dlq,
        oldest_message_age_seconds=age,
        oldest_message_age_source=source,
        last_hour=totals,
        rate_per_second=rate,
        eta_seconds=eta_seconds,
        eta_note=eta_note,
    )


def _metric_data(
    cloudwatch: CloudWatchClient, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    out: dict[str, list[tuple[datetime, float]]] = {}
    kwargs: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end + timedelta(seconds=60),
        "ScanBy": "TimestampDescending",
    }
    while True:
        response = cloudwatch.get_metric_data(**kwargs)
        for result in response.get("MetricDataResults") or []:
            points = out.setdefault(result["Id"], [])
            for stamp, value in zip(
                result.get("Timestamps") or [], result.get("Values") or [], strict=False
            ):
                points.append((_utc(stamp), float(value)))
        token = response.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


def _utc(stamp: datetime) -> datetime:
    return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)


__all__ = [
    "PROCESSED_METRICS",
    "QueueDepth",
    "Status",
    "collect",
    "eta",
    "oldest_message_age",
    "pipeline_metrics",
    "queue_depth",
]
