"""Embedded Metric Format: metric values in log lines, forwarded to CloudWatch.

Lambda functions write metrics as EMF JSON log lines; CloudWatch extracts them. Here
:func:`parse_emf` reads the values out of one record (the log recorder collects them)
and :class:`MetricsForwarder` puts them into the local CloudWatch once a second,
aggregated as statistic sets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.literals import StandardUnitType
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef


@dataclass(frozen=True)
class MetricKey:
    """One metric series: what CloudWatch aggregates values under."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]


Metrics = dict[MetricKey, list[float]]
"""Values seen per metric since the last take."""


def parse_emf(record: dict[str, Any]) -> list[tuple[MetricKey, list[float]]]:
    """The metric values in one Embedded Metric Format record."""
    out: list[tuple[MetricKey, list[float]]] = []
    aws = record.get("_aws")
    if not isinstance(aws, dict):
        return out
    for directive in aws.get("CloudWatchMetrics", []) or []:
        namespace = directive.get("Namespace", "")
        for dim_set in directive.get("Dimensions", []) or [[]]:
            dims = tuple((d, str(record.get(d, ""))) for d in dim_set)
            for metric in directive.get("Metrics", []):
                name = metric.get("Name")
                raw = record.get(name)
                values = raw if isinstance(raw, list) else [raw]
                nums = [float(v) for v in values if isinstance(v, int | float)]
                if name and nums:
                    key = MetricKey(namespace, name, metric.get("Unit", "None"), dims)
                    out.append((key, nums))
    return out


class MetricsForwarder:
    """Sends the EMF metrics seen in the logs to CloudWatch (moto), aggregated per second."""

    def __init__(
        self, take: Callable[[], Metrics], client_factory: Callable[[], CloudWatchClient]
    ) -> None:
        self._take = take
        self._factory = client_factory
        self._stop = threading.Event()
        self.sent = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="emf-forwarder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = self._factory()
        while not self._stop.wait(1.0):
            self.flush(client)
        self.flush(client)

    def flush(self, client: CloudWatchClient) -> None:
        metrics = self._take()
        by_namespace: dict[str, list[MetricDatumTypeDef]] = {}
        for key, values in metrics.items():
            by_namespace.setdefault(key.namespace, []).append(
                {
                    "MetricName": key.name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in key.dimensions],
                    "StatisticValues": {
                        "SampleCount": float(len(values)),
                        "Sum": float(sum(values)),
                        "Minimum": float(min(values)),
                        "Maximum": float(max(values)),
                    },
                    "Unit": cast("StandardUnitType", key.unit),
                }
            )
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), 500):
                try:
                    client.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + 500]
                    )
                    self.sent += len(data[start : start + 500])
                except Exception:
                    self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


__all__ = ["MetricKey", "Metrics", "MetricsForwarder", "parse_emf"]
