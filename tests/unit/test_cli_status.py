"""``status`` arithmetic: metric sums, recent rate, ETA (CloudWatch mocked by moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgsearch.config import PipelineConfig
from imgsearch.contract import METRICS
from scripts.ops.status import eta, oldest_message_age, pipeline_metrics


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def _put(cw: Any, cfg: PipelineConfig, name: str, value: float, when: datetime) -> None:
    cw.put_metric_data(
        Namespace=cfg.metrics_namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "service", "Value": cfg.service_name}],
                "Value": value,
                "Unit": "Count",
                "Timestamp": when,
            }
        ],
    )


def test_hour_totals_and_recent_rate(cloudwatch: Any) -> None:
    cfg = PipelineConfig()
    now = datetime.now(UTC)
    _put(cloudwatch, cfg, METRICS.images_embedded, 100, now - timedelta(minutes=50))
    _put(cloudwatch, cfg, METRICS.images_embedded, 30, now - timedelta(minutes=3))
    _put(cloudwatch, cfg, METRICS.unchanged_skipped, 30, now - timedelta(minutes=3))
    _put(cloudwatch, cfg, METRICS.permanent_failures, 2, now - timedelta(minutes=20))
    _put(cloudwatch, cfg, METRICS.images_embedded, 999, now - timedelta(hours=3))  # too old
    totals, rate = pipeline_metrics(cloudwatch, cfg, now)
    assert totals[METRICS.images_embedded] == 130
    assert totals[METRICS.unchanged_skipped] == 30
    assert totals[METRICS.permanent_failures] == 2
    # 60 messages finished in the window, since ~3 minutes (+ one period) ago.
    assert 60 / 300 <= rate <= 60 / 180


def test_no_metrics_means_zero_and_unknown_age(cloudwatch: Any) -> None:
    cfg = PipelineConfig()
    now = datetime.now(UTC)
    totals, rate = pipeline_metrics(cloudwatch, cfg, now)
    assert set(totals.values()) == {0.0} and rate == 0.0
    age, source = oldest_message_age(cloudwatch, "q.fifo", now)
    assert age is None and "no AWS/SQS" in source


def test_oldest_age_is_the_latest_datapoint(cloudwatch: Any) -> None:
    now = datetime.now(UTC)
    for minutes, value in ((5, 100.0), (1, 640.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": "q.fifo"}],
                    "Value": value,
                    "Timestamp": now - timedelta(minutes=minutes),
                }
            ],
        )
    age, source = oldest_message_age(cloudwatch, "q.fifo", now)
    assert age == 640.0 and "CloudWatch" in source


def test_eta() -> None:
    assert eta(0, 0.0) == (0.0, "the queue is empty")
    seconds, _ = eta(100, 2.0)
    assert seconds == 50.0
    seconds, note = eta(5, 0.0)
    assert seconds is None and "none finished" in note
