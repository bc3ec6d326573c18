"""The pipeline's CloudWatch dashboard and alarms.

The alarms watch the ways the pipeline can fall behind or lose track of work:
messages in a dead-letter queue (an image that failed every retry, or an S3 event
the router failed on), a queue that is not draining (age of the oldest message),
function errors (crashes and timeouts; per-image failures are reported as batch item
failures and end in the DLQ instead), a wave of permanent failures (acknowledged
messages never reach a DLQ, and many at once more often mean a misconfiguration than
bad images), and a wave of failed model calls (a retry storm costs Bedrock calls).
The alarms carry no actions: subscribe your own SNS topic or chat integration to them.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from imgsearch.config import PipelineConfig
from imgsearch.contract import METRICS

_MINUTE = cdk.Duration.minutes(1)
_FIVE_MINUTES = cdk.Duration.minutes(5)
_WIDTH = 24
"""A dashboard row is 24 units wide."""
SEARCH_5XX_ALARM_PERCENT = 5
"""The search API's 5xx share (of requests in 5 minutes) that alarms."""
MODEL_CALLS_PER_IMAGE_ALARM = 3
"""InvokeModel calls per embedded image in 5 minutes above which the embedder's retries
alarm. One image takes one call; a storm of retries (throttling, a failing model) shows
as several. A ratio, so it alarms at any scale, a full-speed backfill included."""
MODEL_CALLS_MIN_IMAGES = 20
"""Images embedded in 5 minutes below which the ratio is not judged: a few retries in a
quiet period are not a storm (the failed-calls alarm speaks for a stalled pipeline)."""


def _model_calls_per_image(cfg: PipelineConfig) -> cw.MathExpression:
    """The embedder's InvokeModel calls per image embedded, over 5 minutes: its own
    metrics of this stack (images embedded, Bedrock retries), not Bedrock's account-wide
    counts, which other callers of the model (another stack, the CLI's searches) share."""

    def ours(metric_name: str) -> cw.Metric:
        return cw.Metric(
            namespace=cfg.metrics_namespace,
            metric_name=metric_name,
            dimensions_map={"service": cfg.service_name},
            statistic="Sum",
            period=_FIVE_MINUTES,
        )

    return cw.MathExpression(
        expression=(
            f"IF(embedded >= {MODEL_CALLS_MIN_IMAGES}, (embedded + FILL(retries, 0)) / embedded, 0)"
        ),
        using_metrics={
            "embedded": ours(METRICS.images_embedded),
            "retries": ours(METRICS.transient_retries),
        },
        label="InvokeModel calls per embedded image",
        period=_FIVE_MINUTES,
    )


def _bedrock_metric(cfg: PipelineConfig, metric_name: str) -> cw.Metric:
    """A Bedrock runtime metric for the configured model (AWS/Bedrock, dimension ModelId)."""
    return cw.Metric(
        namespace="AWS/Bedrock",
        metric_name=metric_name,
        dimensions_map={"ModelId": cfg.model_id},
        statistic="Sum",
        period=_FIVE_MINUTES,
    )


def _failed_model_calls(cfg: PipelineConfig) -> cw.MathExpression:
    """InvokeModel calls on the model that failed, from Bedrock's own metrics (AWS/Bedrock,
    dimension ModelId: "Monitor bedrock-runtime inference using CloudWatch metrics").

    Throttles count in neither ``Invocations`` nor the error metrics there, so they are
    added; FILL keeps one missing metric from blanking the sum. Every caller of the model
    in the account and Region counts (the CLI's text searches too).
    """

    return cw.MathExpression(
        expression="FILL(throttled, 0) + FILL(client, 0) + FILL(server, 0)",
        using_metrics={
            "throttled": _bedrock_metric(cfg, "InvocationThrottles"),
            "client": _bedrock_metric(cfg, "InvocationClientErrors"),
            "server": _bedrock_metric(cfg, "InvocationServerErrors"),
        },
        label="failed InvokeModel calls",
        period=_FIVE_MINUTES,
    )


class Observability(Construct):
    """Dashboard (queues, functions, the pipeline's own metrics) and alarms."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PipelineConfig,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        router_dlq: sqs.IQueue,
        router: lambda_.IFunction,
        embedder: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id)
        cfg = config
        name = cfg.stack_name
        self.alarms = [
            self._above(
                "DeadLettersAlarm",
                f"{name}-dlq-not-empty",
                "Images failed every attempt; inspect and redrive the DLQ.",
                dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=_MINUTE
                ),
                0,
            ),
            self._above(
                "RouterDeadLettersAlarm",
                f"{name}-router-dlq-not-empty",
                "S3 events the router could not enqueue; run the backfill.",
                router_dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=_MINUTE
                ),
                0,
            ),
            self._above(
                "OldestMessageAlarm",
                f"{name}-queue-not-draining",
                f"A message waited over {cfg.oldest_message_alarm_seconds} s: the embedder "
                "is not keeping up or not running.",
                queue.metric_approximate_age_of_oldest_message(
                    statistic="Maximum", period=_FIVE_MINUTES
                ),
                cfg.oldest_message_alarm_seconds,
            ),
            self._above(
                "PermanentFailuresAlarm",
                f"{name}-permanent-failures",
                f"More than {cfg.permanent_failures_alarm_threshold} images failed for good in "
                "5 minutes; see PermanentFailuresByReason and the embedder's log.",
                cw.Metric(
                    namespace=cfg.metrics_namespace,
                    metric_name=METRICS.permanent_failures,
                    dimensions_map={"service": cfg.service_name},
                    statistic="Sum",
                    period=_FIVE_MINUTES,
                ),
                cfg.permanent_failures_alarm_threshold,
            ),
            self._above(
                "ModelFailedCallsAlarm",
                f"{name}-model-retry-storm",
                f"More than {cfg.model_failed_calls_alarm_threshold} InvokeModel calls on "
                f"{cfg.model_id} were throttled or failed in 5 minutes: a retry storm costs "
                "calls (max_model_attempts_per_object bounds each message); see the embedder's "
                "log for the reason.",
                _failed_model_calls(cfg),
                cfg.model_failed_calls_alarm_threshold,
            ),
            self._above(
                "ModelCallsPerImageAlarm",
                f"{name}-model-calls-per-image",
                f"More than {MODEL_CALLS_PER_IMAGE_ALARM} InvokeModel calls per embedded "
                f"image in 5 minutes (over at least {MODEL_CALLS_MIN_IMAGES} images): a "
                "storm of Bedrock retries, each a billed or throttled call; see the "
                "embedder's log (retry_reason).",
                _model_calls_per_image(cfg),
                MODEL_CALLS_PER_IMAGE_ALARM,
            ),
            *(
                self._above(
                    f"{label}ErrorsAlarm",
                    f"{name}-{label.lower()}-errors",
                    f"The {label.lower()} Lambda failed (crash or timeout).",
                    fn.metric_errors(statistic="Sum", period=_FIVE_MINUTES),
                    0,
                )
                for label, fn in (("Embedder", embedder), ("Router", router))
            ),
        ]
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=name)
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=_WIDTH, height=3)
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue depth",
                left=[
                    queue.metric_approximate_number_of_messages_visible(label="waiting"),
                    queue.metric_approximate_number_of_messages_not_visible(label="in flight"),
                    dlq.metric_approximate_number_of_messages_visible(label="dead letters"),
                    router_dlq.metric_approximate_number_of_messages_visible(
                        label="router dead letters"
                    ),
                ],
                width=_WIDTH // 2,
            ),
            cw.GraphWidget(
                title="Age of oldest message (s)",
                left=[queue.metric_approximate_age_of_oldest_message(statistic="Maximum")],
                left_annotations=[
                    cw.HorizontalAnnotation(value=cfg.oldest_message_alarm_seconds, label="alarm")
                ],
                width=_WIDTH // 2,
            ),
        )
        for label, fn in (("Embedder", embedder), ("Router", router)):
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title=f"{label}: invocations, errors, throttles",
                    left=[
                        fn.metric_invocations(statistic="Sum"),
                        fn.metric_errors(statistic="Sum"),
                        fn.metric_throttles(statistic="Sum"),
                    ],
                    width=_WIDTH // 2,
                ),
                cw.GraphWidget(
                    title=f"{label}: duration (ms)",
                    left=[
                        fn.metric_duration(statistic="p50", label="p50"),
                        fn.metric_duration(statistic="p99", label="p99"),
                        fn.metric_duration(statistic="Maximum", label="max"),
                    ],
                    width=_WIDTH // 2,
                ),
            )
        self.dashboard.add_widgets(*self._pipeline_widgets(cfg))

    @staticmethod
    def _pipeline_widgets(cfg: PipelineConfig) -> list[cw.IWidget]:
        """The metrics the Lambdas emit themselves (Powertools EMF, dimension ``service``)."""

        def metric(name: str, statistic: str = "Sum") -> cw.Metric:
            return cw.Metric(
                namespace=cfg.metrics_namespace,
                metric_name=name,
                dimensions_map={"service": cfg.service_name},
                statistic=statistic,
                period=_FIVE_MINUTES,
                label=name if statistic == "Sum" else f"{name} {statistic}",
            )

        by_reason = cw.MathExpression(
            expression=(
                f"SEARCH('{{{cfg.metrics_namespace},reason,service}} "
                f'MetricName="{METRICS.permanent_failures_by_reason}" '
                f"service=\"{cfg.service_name}\"', 'Sum', 300)"
            ),
            using_metrics={},
            label="",
            period=_FIVE_MINUTES,
        )
        third = _WIDTH // 3
        return [
            cw.GraphWidget(
                title="Images",
                left=[
                    metric(METRICS.messages_routed),
                    metric(METRICS.images_embedded),
                    metric(METRICS.vectors_deleted),
                    metric(METRICS.unchanged_skipped),
                    metric(METRICS.metadata_upgraded),
                    metric(METRICS.stale_skipped),
                ],
                width=third,
            ),
            cw.GraphWidget(
                title="Failures and retries",
                left=[
                    metric(METRICS.permanent_failures),
                    metric(METRICS.transient_retries),
                    metric(METRICS.transient_failures),
                    by_reason,
                ],
                width=third,
            ),
            cw.GraphWidget(
                title="Embedding latency (ms) and bytes read",
                left=[
                    metric(METRICS.embedding_latency_ms, "p50"),
                    metric(METRICS.embedding_latency_ms, "p99"),
                ],
                right=[metric(METRICS.bytes_read)],
                width=third,
            ),
        ]

    def add_search_api(
        self, cfg: PipelineConfig, api: apigw.HttpApi, function: lambda_.IFunction
    ) -> None:
        """The search API's row: requests, latency, 4xx/5xx, the Bedrock calls it makes, and
        an alarm on the 5xx rate (API Gateway's own metrics, ``AWS/ApiGateway`` by ApiId)."""
        requests = api.metric_count(statistic="Sum", period=_FIVE_MINUTES, label="requests")
        server_errors = api.metric_server_error(statistic="Sum", period=_FIVE_MINUTES, label="5xx")
        rate = cw.MathExpression(
            expression="IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)",
            using_metrics={"requests": requests, "errors": server_errors},
            label="5xx rate (%)",
            period=_FIVE_MINUTES,
        )
        alarm = self._above(
            "SearchServerErrorsAlarm",
            f"{cfg.stack_name}-search-5xx",
            f"Over {SEARCH_5XX_ALARM_PERCENT} % of search API requests failed with a 5xx in "
            "5 minutes; see the search function's log (error_code) and the access log.",
            rate,
            SEARCH_5XX_ALARM_PERCENT,
        )
        self.alarms.append(alarm)
        model_calls = cw.Metric(
            namespace=cfg.metrics_namespace,
            metric_name=METRICS.search_model_calls,
            dimensions_map={"service": cfg.service_name},
            statistic="Sum",
            period=_FIVE_MINUTES,
            label="Bedrock calls by search",
        )
        third = _WIDTH // 3
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Search API: requests, 4xx, 5xx",
                left=[
                    requests,
                    api.metric_client_error(statistic="Sum", period=_FIVE_MINUTES, label="4xx"),
                    server_errors,
                ],
                right=[model_calls],
                width=third,
            ),
            cw.GraphWidget(
                title="Search API: latency (ms)",
                left=[
                    api.metric_latency(statistic=p, period=_FIVE_MINUTES, label=p)
                    for p in ("p50", "p90", "p99")
                ],
                right=[function.metric_duration(statistic="p99", label="function p99")],
                width=third,
            ),
            cw.AlarmStatusWidget(title="Search API alarms", alarms=[alarm], width=third, height=6),
        )

    def _above(
        self, id: str, alarm_name: str, description: str, metric: cw.IMetric, threshold: float
    ) -> cw.Alarm:
        """An alarm on ``metric`` above ``threshold`` in one period; no data is no alarm."""
        return cw.Alarm(
            self,
            id,
            alarm_name=alarm_name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
