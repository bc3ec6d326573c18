"""The event source starts the next batch while the last one's delete is on its way.

Lambda's concurrency counts invocations: once an invocation has returned, the poller's
``DeleteMessageBatch`` no longer holds a slot, so the next batch can be received and
invoked meanwhile. The queue itself (a fake at the network edge) keeps FIFO's rule:
it hands out a group only once its batch is deleted.
"""

from __future__ import annotations

import threading
from typing import Any

from localcloud.lambdas.event_source import SqsEventSource
from localcloud.lambdas.pool import InvocationResult


class Queue:
    """SQS at the network edge: messages of distinct groups; deletes wait for a signal."""

    def __init__(self, groups: int) -> None:
        self.waiting = [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": "{}",
                "Attributes": {"MessageGroupId": f"g{i}"},
            }
            for i in range(groups)
        ]
        self.lock = threading.Lock()
        self.release_deletes = threading.Event()
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        with self.lock:
            if not self.waiting:
                return {}
            return {"Messages": [self.waiting.pop(0)]}

    def delete_message_batch(self, *, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        self.release_deletes.wait(10)
        with self.lock:
            self.deleted.extend(e["ReceiptHandle"] for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


class Pool:
    """Records the batches invoked."""

    def __init__(self) -> None:
        self.invoked: list[str] = []
        self.second = threading.Event()

    def invoke(self, event: dict[str, Any]) -> InvocationResult:
        self.invoked.append(event["Records"][0]["messageId"])
        if len(self.invoked) >= 2:
            self.second.set()
        return InvocationResult(ok=True)


def test_a_delete_in_flight_does_not_hold_the_invocation_slot() -> None:
    queue, pool = Queue(groups=2), Pool()
    source = SqsEventSource(
        lambda: queue,  # type: ignore[arg-type,return-value]
        "url",
        "arn",
        "us-east-1",
        pool,  # type: ignore[arg-type]
        batch_size=1,
        max_concurrency=1,
        wait_seconds=0,
    )
    source.start()
    try:
        # The first batch's delete is held back; the second batch still gets invoked.
        started = pool.second.wait(5)
        invoked, deleted = list(pool.invoked), list(queue.deleted)
    finally:
        queue.release_deletes.set()
        source.stop()
    assert started and invoked == ["m0", "m1"] and deleted == []
    assert source.stats_now()["peak_in_flight"] == 1
