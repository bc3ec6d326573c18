"""What AWS writes to CloudWatch on its own, written to the local cloud's CloudWatch too.

In AWS, Lambda delivers every line a function prints to CloudWatch Logs, and SQS
publishes queue metrics (``AWS/SQS``, once a minute) such as
``ApproximateAgeOfOldestMessage``. Operator tools read them there (``imgsearch dlq
list`` looks up why a message failed in the embedder's log group; ``imgsearch status``
reads the age of the oldest message). These two feeds do the same against moto, so those
tools run the same code on the local cloud as in AWS:

* :class:`LogsForwarder` is a log sink (``sink(function, line)``) that batches lines and
  puts them into ``/aws/lambda/<function>`` (Lambda's default log group name) once a
  second.
* :class:`QueueMetricsPublisher` reads each queue from fauxqs' inspection endpoint (the
  send time of every waiting message) and puts the ``AWS/SQS`` metrics with the
  ``QueueName`` dimension, every ``interval`` seconds (60, as SQS does) and on demand.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from localcloud.services.sqs import SqsServer

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

LOG_BATCH = 1000
LOG_STREAM = "localcloud/[$LATEST]0"
SQS_NAMESPACE = "AWS/SQS"


class LogsForwarder:
    """Lambda's log delivery to CloudWatch Logs (see the module docstring)."""

    def __init__(
        self,
        client_factory: Callable[[], CloudWatchLogsClient],
        functions: Iterable[str],
        *,
        interval: float = 1.0,
    ) -> None:
        self._factory = client_factory
        self.functions = frozenset(functions)
        self._buffer: list[tuple[str, int, str]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._created: set[str] = set()
        self._stop = threading.Event()
        self.sent = 0
        self.errors = 0
        self._client: CloudWatchLogsClient | None = None
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="logs-forwarder", daemon=True
        )
        self._thread.start()

    @staticmethod
    def group(function: str) -> str:
        return f"/aws/lambda/{function}"

    def __call__(self, function: str, line: str) -> None:
        if function not in self.functions or not line:
            return
        with self._lock:
            self._buffer.append((function, int(time.time() * 1000), line))

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
        if not pending:
            return
        with self._flush_lock:
            if self._client is None:
                self._client = self._factory()
            client = self._client
            by_function: dict[str, list[InputLogEventTypeDef]] = {}
            for function, stamp, line in pending:
                by_function.setdefault(function, []).append({"timestamp": stamp, "message": line})
            for function, events in by_function.items():
                try:
                    self._ensure(client, function)
                    for start in range(0, len(events), LOG_BATCH):
                        chunk = events[start : start + LOG_BATCH]
                        client.put_log_events(
                            logGroupName=self.group(function),
                            logStreamName=LOG_STREAM,
                            logEvents=chunk,
                        )
                        self.sent += len(chunk)
                except Exception:  # the cloud is shutting down, or moto refused a batch
                    self.errors += 1

    def _ensure(self, client: CloudWatchLogsClient, function: str) -> None:
        if function in self._created:
            return
        group = self.group(function)
        exists = client.exceptions.ResourceAlreadyExistsException
        with contextlib.suppress(exists):
            client.create_log_group(logGroupName=group)
        with contextlib.suppress(exists):
            client.create_log_stream(logGroupName=group, logStreamName=LOG_STREAM)
        self._created.add(function)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class QueueMetricsPublisher:
    """SQS's own CloudWatch metrics for the local queues (see the module docstring)."""

    def __init__(
        self,
        sqs: SqsServer,
        queue_names: Iterable[str],
        client_factory: Callable[[], CloudWatchClient],
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self.queue_names = tuple(queue_names)
        self._factory = client_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._client: CloudWatchClient | None = None
        self._stop = threading.Event()
        self.published = 0
        self.errors = 0
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="sqs-metrics", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        self.publish()
        while not self._stop.wait(interval):
            self.publish()

    def measure(self, name: str) -> dict[str, float]:
        """The metric values of one queue right now."""
        view = self._sqs.inspect_queue(name)
        messages = view.get("messages") or {}
        ready = messages.get("ready") or []
        delayed = messages.get("delayed") or []
        inflight = [item.get("message") or {} for item in messages.get("inflight") or []]
        sent = [
            float(m["sentTimestamp"])
            for m in (*ready, *delayed, *inflight)
            if isinstance(m.get("sentTimestamp"), int | float)
        ]
        now_ms = self._clock() * 1000.0
        return {
            "ApproximateAgeOfOldestMessage": max(0.0, (now_ms - min(sent)) / 1000.0)
            if sent
            else 0.0,
            "ApproximateNumberOfMessagesVisible": float(len(ready)),
            "ApproximateNumberOfMessagesNotVisible": float(len(inflight)),
            "ApproximateNumberOfMessagesDelayed": float(len(delayed)),
        }

    def publish(self) -> None:
        """Put one datapoint of each metric for each queue (also callable on demand)."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._factory()
                stamp = datetime.fromtimestamp(self._clock(), UTC)
                for name in self.queue_names:
                    values = self.measure(name)
                    self._client.put_metric_data(
                        Namespace=SQS_NAMESPACE,
                        MetricData=[
                            {
                                "MetricName": metric,
                                "Dimensions": [{"Name": "QueueName", "Value": name}],
                                "Timestamp": stamp,
                                "Value": value,
                                "Unit": "Seconds"
                                if metric == "ApproximateAgeOfOldestMessage"
                                else "Count",
                            }
                            for metric, value in values.items()
                        ],
                    )
                    self.published += 1
            except Exception:  # shutting down, or the queue is gone
                self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


__all__ = ["LogsForwarder", "QueueMetricsPublisher"]
