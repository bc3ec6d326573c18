"""The local Lambda runtime: execution environments, the SQS event source mapping, S3's
asynchronous invocations, log capture, EMF metrics and per-object accounting.

* :class:`FunctionPool` keeps warm execution environments of one function, each a child
  process (:mod:`localcloud.worker`) that imported the handler once, with the Lambda's
  environment (``PipelineConfig.to_lambda_env()`` plus endpoints, credentials, region).
  An invocation past the function's timeout kills its environment, as Lambda does.
* :class:`SqsEventSource` polls the FIFO queue the way Lambda's event source mapping
  does: ``batch_size`` and maximum concurrency from the config, at most one batch in
  flight per message group, ``batchItemFailures`` honoured (only the successes are
  deleted), everything else left to the visibility timeout, redelivery and the queue's
  redrive policy (the DLQ after ``maxReceiveCount``).
* :class:`AsyncInvoker` runs S3's event notifications through the router function with
  Lambda's asynchronous retry policy (two retries), recording events that still fail.
* Every log line is kept (and written to a file if asked); EMF lines become CloudWatch
  metrics in the local cloud; the embedder's per-message ``outcome`` lines feed the
  :class:`~localcloud.accounting.Ledger`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from localcloud.accounting import Ledger, parse_outcome
from localcloud.worker import CONTROL

FUNCTIONS_DIR = Path(__file__).resolve().parents[1] / "functions"
LogSink = Callable[[str, str], None]
"""``sink(function_name, line)`` for every log line a function writes."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    """``module.function``, as in the Lambda's handler setting."""
    timeout_seconds: float
    memory_mb: int
    env: dict[str, str]


@dataclass
class InvocationResult:
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    timed_out: bool = False


class WorkerDied(RuntimeError):
    pass


class _Worker:
    """One execution environment (child process) of a function."""

    def __init__(self, spec: FunctionSpec, sink: LogSink) -> None:
        self.spec = spec
        self._sink = sink
        self._ready = threading.Event()
        self._result: queue.Queue[dict[str, Any]] = queue.Queue()
        self.init_error: dict[str, Any] | None = None
        env = {
            **spec.env,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(FUNCTIONS_DIR), spec.env.get("PYTHONPATH", "")) if p
            ),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "localcloud.worker",
                spec.handler,
                spec.name,
                str(spec.timeout_seconds),
                str(spec.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=FUNCTIONS_DIR.parent,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith(CONTROL):
                try:
                    message = json.loads(line[1:])
                except ValueError:
                    self._sink(self.spec.name, line[1:])
                    continue
                kind = message.get("lc")
                if kind == "ready":
                    self._ready.set()
                elif kind == "init_error":
                    self.init_error = message.get("error")
                    self._ready.set()
                elif kind == "result":
                    self._result.put(message)
                continue
            self._sink(self.spec.name, line)
        self._ready.set()
        self._result.put({"lc": "died"})

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._sink(self.spec.name, line.rstrip("\n"))

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout):
            raise WorkerDied(f"{self.spec.name}: execution environment not ready in {timeout}s")
        if self.init_error is not None:
            err = self.init_error
            raise WorkerDied(
                f"{self.spec.name}: init failed: {err.get('errorType')}: {err.get('errorMessage')}"
            )
        if self.proc.poll() is not None:
            raise WorkerDied(f"{self.spec.name}: execution environment exited during init")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.init_error is None

    def invoke(self, event: Any, request_id: str) -> InvocationResult:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": request_id, "event": event}) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise WorkerDied(f"{self.spec.name}: cannot reach execution environment") from exc
        try:
            message = self._result.get(timeout=self.spec.timeout_seconds + 1.0)
        except queue.Empty:
            self.kill()
            return InvocationResult(
                ok=False,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {self.spec.timeout_seconds:.2f} seconds",
                },
                duration_ms=self.spec.timeout_seconds * 1000,
                timed_out=True,
            )
        if message.get("lc") == "died":
            return InvocationResult(
                ok=False,
                error={
                    "errorType": "Runtime.ExitError",
                    "errorMessage": "the execution environment exited during the invocation",
                },
            )
        return InvocationResult(
            ok=bool(message.get("ok")),
            payload=message.get("payload"),
            error=message.get("error"),
            duration_ms=float(message.get("duration_ms", 0.0)),
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()


class FunctionPool:
    """Warm execution environments of one function; at most ``concurrency`` at a time."""

    def __init__(self, spec: FunctionSpec, concurrency: int, sink: LogSink) -> None:
        self.spec = spec
        self.concurrency = concurrency
        self._sink = sink
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Condition()
        self._closed = False
        self.stats: Counter[str] = Counter()
        self.busy_seconds = 0.0
        """Total handler time of all invocations (what Lambda bills as duration)."""

    def warm(self, count: int | None = None, timeout: float = 60.0) -> None:
        """Start ``count`` environments now (default: all) and wait for their init."""
        n = self.concurrency if count is None else min(count, self.concurrency)
        fresh = []
        with self._lock:
            while len(self._all) < n:
                worker = _Worker(self.spec, self._sink)
                self._all.append(worker)
                fresh.append(worker)
        for worker in fresh:
            worker.wait_ready(timeout)
            self.stats["cold_starts"] += 1
        with self._lock:
            self._idle.extend(fresh)
            self._lock.notify_all()

    def _acquire(self) -> _Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerDied(f"{self.spec.name}: the runtime is shutting down")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self.concurrency:
                    worker = _Worker(self.spec, self._sink)
                    self._all.append(worker)
                    break
                self._lock.wait()
        try:
            worker.wait_ready(60.0)
        except WorkerDied:
            self._discard(worker)
            raise
        self.stats["cold_starts"] += 1
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                if worker in self._all:
                    self._all.remove(worker)
                worker.close()
            self._lock.notify()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            self._lock.notify()
        worker.kill()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._all) - len(self._idle)

    def invoke(self, event: Any) -> InvocationResult:
        """Run one invocation on a free environment (blocks while all are busy)."""
        worker = self._acquire()
        request_id = str(uuid.uuid4())
        try:
            result = worker.invoke(event, request_id)
        except WorkerDied as exc:
            result = InvocationResult(
                ok=False, error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
            )
        finally:
            self._release(worker)
        with self._lock:
            self.stats["invocations"] += 1
            self.busy_seconds += result.duration_ms / 1000.0
        if not result.ok:
            self.stats["errors"] += 1
        if result.timed_out:
            self.stats["timeouts"] += 1
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._lock.notify_all()
        for worker in workers:
            worker.close()


# --------------------------------------------------------------------------- SQS


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for a batch of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": dict(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def successes(batch: list[dict[str, Any]], result: InvocationResult) -> list[dict[str, Any]] | None:
    """The messages of ``batch`` to delete after ``result`` (ReportBatchItemFailures).

    None means the whole batch failed (nothing is deleted). Lambda's documented rules: an
    error, an invalid response or a bad ``itemIdentifier`` fail the whole batch; an
    empty/null response or empty/null ``batchItemFailures`` is a complete success.
    """
    if not result.ok:
        return None
    payload = result.payload
    if payload is None or payload == {}:
        return batch
    if not isinstance(payload, dict):
        return None
    failures = payload.get("batchItemFailures")
    if failures is None or failures == []:
        return batch
    if not isinstance(failures, list):
        return None
    ids = {m["MessageId"] for m in batch}
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or set(item) != {"itemIdentifier"}:
            return None
        ident = item["itemIdentifier"]
        if not isinstance(ident, str) or not ident or ident not in ids:
            return None
        failed.add(ident)
    return [m for m in batch if m["MessageId"] not in failed]


class SqsEventSource:
    """Lambda's event source mapping for one FIFO queue (see the module docstring).

    As in Lambda, polling is separate from invoking: receiver threads keep up to
    ``max_concurrency`` batches ready beyond those running, so a free environment
    starts on the next batch at once and the receive and delete round trips do not
    eat into the function's concurrency.
    """

    RECEIVERS = 2

    def __init__(
        self,
        client_factory: Callable[[], Any],
        queue_url: str,
        queue_arn: str,
        region: str,
        pool: FunctionPool,
        *,
        batch_size: int,
        max_concurrency: int,
        wait_seconds: int = 1,
    ) -> None:
        self._factory = client_factory
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.pool = pool
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._enabled = threading.Event()
        self._enabled.set()
        self._receivers: list[threading.Thread] = []
        self._invokers: list[threading.Thread] = []
        self._slots = threading.BoundedSemaphore(2 * max_concurrency)
        self._ready: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._groups_in_flight: set[str] = set()
        self._parked = 0
        self._parked_cond = threading.Condition()
        self.in_flight = 0
        """Batches received and not yet finished (invoked and deleted)."""
        self.stats: Counter[str] = Counter()

    def start(self) -> None:
        for i in range(self.RECEIVERS):
            t = threading.Thread(target=self._receive_loop, name=f"esm-poll-{i}", daemon=True)
            t.start()
            self._receivers.append(t)
        for i in range(2 * self.max_concurrency):
            t = threading.Thread(target=self._invoke_loop, name=f"esm-invoke-{i}", daemon=True)
            t.start()
            self._invokers.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._enabled.set()
        for t in self._receivers:
            t.join(timeout=self.wait_seconds + 5)
        for _ in self._invokers:
            self._ready.put(None)
        for t in self._invokers:
            t.join(timeout=5)

    def disable(self, timeout: float = 30.0) -> None:
        """Stop polling, like disabling the event source mapping.

        Returns once every receiver is parked; batches already received still run.
        Nothing more is received until :meth:`enable`.
        """
        self._enabled.clear()
        deadline = time.monotonic() + timeout
        with self._parked_cond:
            while self._parked < len(self._receivers):
                if not self._parked_cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("the event source's pollers did not stop in time")

    def enable(self) -> None:
        self._enabled.set()

    @property
    def enabled(self) -> bool:
        return self._enabled.is_set()

    # ------------------------------------------------------------------ receiving

    def _park_while_disabled(self) -> None:
        if self._enabled.is_set():
            return
        with self._parked_cond:
            self._parked += 1
            self._parked_cond.notify_all()
        self._enabled.wait()
        with self._parked_cond:
            self._parked -= 1

    def _receive_loop(self) -> None:
        client = self._factory()
        while not self._stop.is_set():
            self._park_while_disabled()
            if self._stop.is_set():
                return
            if not self._slots.acquire(timeout=0.5):
                continue
            batch = self._receive(client)
            if not batch:
                self._slots.release()
                continue
            groups = {m.get("Attributes", {}).get("MessageGroupId", "") for m in batch}
            with self._lock:
                if groups & self._groups_in_flight:
                    # SQS never hands out a group that has a batch in flight; count it if
                    # the emulator ever does, so tests can assert it never happens.
                    self.stats["group_conflicts"] += 1
                self._groups_in_flight |= groups
                self.in_flight += 1
            self._ready.put(batch)

    def _receive(self, client: Any) -> list[dict[str, Any]]:
        try:
            reply = client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception:  # the queue went away at shutdown, or a passing error
            if not self._stop.wait(0.2):
                self.stats["receive_errors"] += 1
            return []
        messages: list[dict[str, Any]] = reply.get("Messages", [])
        return messages

    # ------------------------------------------------------------------ invoking

    def _invoke_loop(self) -> None:
        client = self._factory()
        while True:
            batch = self._ready.get()
            if batch is None:
                return
            groups = {m.get("Attributes", {}).get("MessageGroupId", "") for m in batch}
            try:
                self._run(client, batch, groups)
            finally:
                with self._lock:
                    self.in_flight -= 1
                self._slots.release()

    def _run(self, client: Any, batch: list[dict[str, Any]], groups: set[str]) -> None:
        self.stats["batches"] += 1
        self.stats["messages"] += len(batch)
        try:
            result = self.pool.invoke(sqs_event(batch, self.queue_arn, self.region))
        except WorkerDied as exc:
            result = InvocationResult(
                ok=False, error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
            )
        finally:
            # Released before the delete: the queue keeps the groups locked until then,
            # so a conflict seen after this point is a real one.
            with self._lock:
                self._groups_in_flight -= groups
        done = successes(batch, result)
        if done is None:
            self.stats["batch_failures"] += 1
            self.stats["messages_failed"] += len(batch)
            return
        self.stats["messages_failed"] += len(batch) - len(done)
        self._delete(client, done)

    def _delete(self, client: Any, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            try:
                reply = client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(chunk)
                    ],
                )
            except Exception:  # the message comes back after its visibility timeout
                self.stats["delete_errors"] += len(chunk)
                continue
            self.stats["messages_deleted"] += len(reply.get("Successful", []))
            self.stats["delete_errors"] += len(reply.get("Failed", []))


# --------------------------------------------------------------------------- async


@dataclass
class FailedEvent:
    function: str
    event: Any
    error: dict[str, Any] | None


class AsyncInvoker:
    """Lambda's asynchronous invocation: queued events, two retries, failures recorded."""

    def __init__(
        self,
        pool: FunctionPool,
        *,
        workers: int,
        retries: int = 2,
        retry_delay: float = 0.5,
        on_failure: Callable[[Any, dict[str, Any] | None], None] | None = None,
    ) -> None:
        self.pool = pool
        self.on_failure = on_failure
        self.retries = retries
        self.retry_delay = retry_delay
        self._queue: queue.Queue[tuple[Any, int] | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self.failed: list[FailedEvent] = []
        self.stats: Counter[str] = Counter()
        self._threads = [
            threading.Thread(target=self._run, name=f"async-{pool.spec.name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, event: Any) -> None:
        with self._lock:
            self._pending += 1
        self.stats["events"] += 1
        self._queue.put((event, 0))

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, attempt = item
            try:
                result = self.pool.invoke(event)
            except WorkerDied as exc:
                result = InvocationResult(
                    ok=False, error={"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
                )
            if not result.ok and attempt < self.retries:
                self.stats["retries"] += 1
                delay = self.retry_delay * (2**attempt)
                threading.Timer(delay, self._queue.put, args=((event, attempt + 1),)).start()
                continue
            if not result.ok:
                self.stats["failed"] += 1
                self.failed.append(FailedEvent(self.pool.spec.name, event, result.error))
                if self.on_failure is not None:
                    try:
                        self.on_failure(event, result.error)
                    except Exception:  # never lose the pending count over a DLQ hiccup
                        self.stats["dlq_errors"] += 1
            with self._lock:
                self._pending -= 1

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)


# --------------------------------------------------------------------------- logs


@dataclass
class _MetricKey:
    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self.unit, self.dimensions))


def parse_emf(record: dict[str, Any]) -> list[tuple[_MetricKey, list[float]]]:
    """The metric values in one Embedded Metric Format record."""
    out: list[tuple[_MetricKey, list[float]]] = []
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
                    key = _MetricKey(namespace, name, metric.get("Unit", "None"), dims)
                    out.append((key, nums))
    return out


@dataclass
class LogRecorder:
    """Receives every log line: keeps recent ones, writes a file, feeds metrics and ledger."""

    ledger: Ledger
    log_file: Path | None = None
    keep: int = 5000
    recent: deque[tuple[str, str]] = field(default_factory=deque)
    lines: Counter[str] = field(default_factory=Counter)
    _metrics: dict[_MetricKey, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _file: TextIO | None = None

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.keep)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.log_file.open("a", encoding="utf-8")

    def __call__(self, function: str, line: str) -> None:
        record: Any = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
        with self._lock:
            self.recent.append((function, line))
            self.lines[function] += 1
            if self._file is not None:
                self._file.write(f"{function}\t{line}\n")
            if isinstance(record, dict):
                for key, values in parse_emf(record):
                    self._metrics.setdefault(key, []).extend(values)
        if isinstance(record, dict):
            outcome = parse_outcome(record)
            if outcome is not None:
                self.ledger.record(outcome)

    def take_metrics(self) -> dict[_MetricKey, list[float]]:
        with self._lock:
            metrics, self._metrics = self._metrics, {}
            if self._file is not None:
                self._file.flush()
        return metrics

    def records(self, function: str | None = None) -> list[dict[str, Any]]:
        """Recent JSON log records (of one function), oldest first."""
        out = []
        with self._lock:
            lines = list(self.recent)
        for fn, line in lines:
            if function is not None and fn != function:
                continue
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class MetricsForwarder:
    """Sends the EMF metrics seen in the logs to CloudWatch (moto), aggregated per second."""

    def __init__(self, recorder: LogRecorder, client_factory: Callable[[], Any]) -> None:
        self._recorder = recorder
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

    def flush(self, client: Any) -> None:
        metrics = self._recorder.take_metrics()
        by_namespace: dict[str, list[dict[str, Any]]] = {}
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
                    "Unit": key.unit if key.unit != "None" else "None",
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


__all__ = [
    "AsyncInvoker",
    "FailedEvent",
    "FunctionPool",
    "FunctionSpec",
    "InvocationResult",
    "LogRecorder",
    "MetricsForwarder",
    "SqsEventSource",
    "WorkerDied",
    "parse_emf",
    "sqs_event",
    "successes",
]
