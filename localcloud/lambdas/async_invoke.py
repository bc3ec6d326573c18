"""Lambda's asynchronous invocation, as S3 event notifications use it.

:class:`AsyncInvoker` queues events for a function and runs them with Lambda's retry
policy for asynchronous invocations (two retries, with backoff), recording events that
still fail and handing them to an on-failure destination (the router's DLQ).
"""

from __future__ import annotations

import math
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.lambdas.pool import FunctionPool, InvocationResult, WorkerDied


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

    def _count(self, name: str) -> None:
        with self._lock:  # from several threads: an unlocked += can lose a count
            self.stats[name] += 1

    def delay_before(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1, 2): Lambda's own fixed schedule.

        Lambda waits one minute before the first retry and two before the second; this
        is that schedule scaled to ``retry_delay``. It is the service's timetable, not a
        client's backoff, so it has no jitter (``imgsearch.aws_errors.backoff_delay`` is
        for callers of AWS), and tests can count on it.
        """
        return math.ldexp(self.retry_delay, retry - 1)

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
                self._count("retries")
                delay = self.delay_before(attempt + 1)
                threading.Timer(delay, self._queue.put, args=((event, attempt + 1),)).start()
                continue
            if not result.ok:
                self._count("failed")
                self.failed.append(FailedEvent(self.pool.spec.name, event, result.error))
                if self.on_failure is not None:
                    try:
                        self.on_failure(event, result.error)
                    except Exception:  # never lose the pending count over a DLQ hiccup
                        self._count("dlq_errors")
            with self._lock:
                self._pending -= 1

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)


__all__ = ["AsyncInvoker", "FailedEvent"]
