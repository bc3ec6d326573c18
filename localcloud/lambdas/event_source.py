"""Lambda's SQS event source mapping for the FIFO queue.

:class:`SqsEventSource` polls the queue the way Lambda's event source mapping does:
``batch_size`` and maximum concurrency from the config, at most one batch in flight per
message group, ``batchItemFailures`` honoured (:func:`successes`: only the successes are
deleted), everything else left to the visibility timeout, redelivery and the queue's
redrive policy (the DLQ after ``maxReceiveCount``).

A batch is what one ``ReceiveMessage`` returns: Lambda has no batching window for FIFO
queues ("Batching window is not supported for FIFO queues", Lambda parameters for Amazon SQS
event source mappings; ``BatchSize`` at most 10 for FIFO), and SQS returns as many messages
of one group as it can per receive, in order ("FIFO queue delivery logic in Amazon SQS").
So a batch can hold several messages of one group; the local SQS does this too
(``localcloud/services/fauxqs_fifo.mjs``). ``stats["group_runs"]`` counts the batches that
did, so a test can see the path was taken.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from localcloud.lambdas.pool import FunctionPool, InvocationResult, WorkerDied
from localcloud.services.calls import CallTimes

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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

    As in Lambda, polling is separate from invoking, but a receiver takes a batch only
    when one of the ``max_concurrency`` invocations is free to start it: a batch held
    back would wait while its visibility timeout runs, and once that passed SQS would
    hand its message group out again while the first copy still runs. Any such overlap
    of one group is counted in :attr:`group_overlaps` (the accounting reports it).
    A slot is an invocation: it is free again once the invocation returns, while the
    poller deletes the batch's messages (their groups stay locked in the queue until
    then, so FIFO order holds); an invoker thread of a pair runs the next batch meanwhile.
    There are as many pollers as slots (at least
    ``MIN_RECEIVERS``, at most ``MAX_RECEIVERS``), so a freed slot does not queue behind
    another slot's receive.
    ``stats`` are updated under one lock: receivers and invokers are separate threads.
    """

    MIN_RECEIVERS = 2
    MAX_RECEIVERS = 10

    def __init__(
        self,
        client_factory: Callable[[], SQSClient],
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
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._ready: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._groups_in_flight: Counter[str] = Counter()
        self._parked = 0
        self._parked_cond = threading.Condition()
        self.in_flight = 0
        """Batches received and not yet finished (invoked and deleted)."""
        self._running = 0
        """Batches received and not yet invoked to the end: what holds a slot."""
        self.stats: Counter[str] = Counter()
        self.call_times = CallTimes()
        """Seconds per SQS call the pollers make (``sqs:ReceiveMessage`` ...), client side:
        the local SQS goes straight to fauxqs, not through the front server."""
        self.group_overlaps: Counter[str] = Counter()
        """Message groups that were handed out while a batch of theirs was in flight."""

    def _count(self, **counts: int) -> None:
        with self._lock:
            self.stats.update(counts)

    def stats_now(self) -> dict[str, int]:
        """A consistent copy of :attr:`stats`."""
        with self._lock:
            return dict(self.stats)

    def overlaps_now(self) -> dict[str, int]:
        """A consistent copy of :attr:`group_overlaps`."""
        with self._lock:
            return dict(self.group_overlaps)

    def start(self) -> None:
        receivers = min(max(self.MIN_RECEIVERS, self.max_concurrency), self.MAX_RECEIVERS)
        for i in range(receivers):
            t = threading.Thread(target=self._receive_loop, name=f"esm-poll-{i}", daemon=True)
            t.start()
            self._receivers.append(t)
        # Twice the slots: an invoker whose batch is being deleted has given its slot back,
        # and another invoker starts the next batch meanwhile (invocations stay <= slots).
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
                overlapping = [g for g in groups if self._groups_in_flight[g]]
                if overlapping:
                    # SQS never hands out a group that has a batch in flight, unless its
                    # visibility timeout ran out: count it, so tests can assert it never
                    # happens.
                    self.stats["group_conflicts"] += 1
                    self.group_overlaps.update(overlapping)
                self._groups_in_flight.update(groups)
                self.in_flight += 1
                self._running += 1
                self.stats["peak_in_flight"] = max(self.stats["peak_in_flight"], self._running)
            self._ready.put(batch)

    def _receive(self, client: SQSClient) -> list[dict[str, Any]]:
        started = time.perf_counter()
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
                self._count(receive_errors=1)
            return []
        messages = cast("list[dict[str, Any]]", reply.get("Messages", []))
        if messages:  # an empty long poll's wait is not the emulator's time
            self.call_times.add("sqs:ReceiveMessage", time.perf_counter() - started)
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

    def _invoked(self) -> None:
        """The invocation returned: its slot is free, the delete is the poller's."""
        with self._lock:
            self._running -= 1
        self._slots.release()

    def _run(self, client: SQSClient, batch: list[dict[str, Any]], groups: set[str]) -> None:
        self._count(batches=1, messages=len(batch), group_runs=int(len(groups) < len(batch)))
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
                self._groups_in_flight.subtract(groups)
                self._groups_in_flight += Counter()  # drops the groups now at zero
            self._invoked()
        done = successes(batch, result)
        if done is None:
            self._count(batch_failures=1, messages_failed=len(batch))
            return
        self._count(messages_failed=len(batch) - len(done))
        self._delete(client, done)

    def _delete(self, client: SQSClient, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            began = time.perf_counter()
            try:
                reply = client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(chunk)
                    ],
                )
            except Exception:  # the message comes back after its visibility timeout
                self._count(delete_errors=len(chunk))
                continue
            self.call_times.add("sqs:DeleteMessageBatch", time.perf_counter() - began)
            self._count(
                messages_deleted=len(reply.get("Successful", [])),
                delete_errors=len(reply.get("Failed", [])),
            )


__all__ = ["SqsEventSource", "sqs_event", "successes"]
