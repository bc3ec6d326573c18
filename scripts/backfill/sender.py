"""Fast, careful SendMessageBatch: many batches in flight, retries per entry, backoff.

A FIFO queue accepts 300 API calls/s per action (3,000 messages/s in batches of 10;
far more with high-throughput mode), and each call takes a network round trip, so a
one-batch-at-a-time sender is latency-bound. :class:`Dispatcher` keeps up to
``max_in_flight`` batches going on a thread pool; :class:`BatchSender` sends one
batch until every entry is accepted or definitely rejected:

- a partially failed batch resends only its failed entries;
- ``SenderFault`` entries (SQS says the entry itself is invalid) are rejected, not
  retried: retrying cannot fix them, and the run reports them;
- throttling halves the number of concurrent calls (:class:`AdaptiveLimiter`, AIMD),
  and every retry waits an exponential backoff with full jitter;
- an optional ``rate`` caps messages per second (:class:`RateLimiter`).

botocore's own retries are turned off for this client (``total_max_attempts=1``):
one retry layer that sees per-entry failures too is easier to reason about than two.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from botocore.exceptions import ClientError

from imgsearch.aws_errors import (
    NETWORK_ERRORS,
    THROTTLING_CODES,
    backoff_delay,
    error_code,
    error_message,
    http_status,
)
from imgsearch.enqueue import settle_batch
from scripts.backfill.errors import SendError
from scripts.common.errors import describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        SendMessageBatchRequestEntryTypeDef,
        SendMessageBatchResultTypeDef,
    )

TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "ServiceUnavailableException",
    }
)


# --------------------------------------------------------------------------- pacing


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay: float = 0.1
    max_delay: float = 20.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (:func:`imgsearch.aws_errors.backoff_delay`), drawn from ``rng``."""
        return backoff_delay(attempt, base=self.base_delay, cap=self.max_delay, rng=rng.random)


class AdaptiveLimiter:
    """How many SendMessageBatch calls may run at once: AIMD on throttling.

    Starts at ``maximum``; a throttle halves the window (at most once per ``cooldown``,
    so a burst of throttles from calls already in flight counts once); each success
    grows it by ``1/window`` (about +1 per window's worth of calls) back to ``maximum``.
    """

    def __init__(
        self,
        maximum: int,
        *,
        cooldown: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = max(1, maximum)
        self.window = float(self.maximum)
        self.cooldown = cooldown
        self.clock = clock
        self.active = 0
        self.throttle_events = 0
        self._last_cut = -float("inf")
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            while self.active >= int(self.window):
                self._cond.wait()
            self.active += 1
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify()

    def on_success(self) -> None:
        with self._cond:
            if self.window < self.maximum:
                self.window = min(float(self.maximum), self.window + 1.0 / self.window)
                self._cond.notify_all()

    def on_throttle(self) -> None:
        with self._cond:
            now = self.clock()
            if now - self._last_cut >= self.cooldown:
                self.window = max(1.0, self.window / 2)
                self._last_cut = now
                self.throttle_events += 1


class RateLimiter:
    """At most ``rate`` messages per second across threads (a virtual schedule, GCRA)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self, messages: int) -> None:
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + messages / self.rate
        if start > now:
            self.sleep(start - now)


# --------------------------------------------------------------------------- one batch


@dataclass
class Batch:
    seq: int
    entries: list[dict[str, str]]


@dataclass(frozen=True)
class Rejected:
    body: str
    code: str
    message: str


@dataclass
class SendResult:
    seq: int
    sent: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    calls: int = 0
    retried_entries: int = 0
    throttled_calls: int = 0


class BatchSender:
    """Sends one batch until every entry is accepted or rejected (thread-safe)."""

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        limiter: AdaptiveLimiter,
        rate: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.limiter = limiter
        self.rate = rate
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.cancelled = threading.Event()
        """Set when the operator quits at once: no more attempts, no more waiting."""

    def send(self, batch: Batch) -> SendResult:
        result = SendResult(batch.seq)
        pending = batch.entries
        attempt = 0
        while pending:
            if self.cancelled.is_set():
                raise SendError(f"stopped with {len(pending)} message(s) of a batch unsent")
            if self.rate is not None:
                self.rate.acquire(len(pending))
            throttled = False
            failed: list[dict[str, str]]
            with self.limiter.slot():
                result.calls += 1
                try:
                    response = self.client.send_message_batch(
                        QueueUrl=self.queue_url,
                        # Our entries are built as plain str dicts (imgsearch.messages).
                        Entries=cast("list[SendMessageBatchRequestEntryTypeDef]", pending),
                    )
                except ClientError as exc:
                    code = error_code(exc)
                    if code in THROTTLING_CODES:
                        throttled = True
                    elif code not in TRANSIENT_CODES and not http_status(exc) >= 500:
                        raise SendError(describe_aws_error(exc)) from exc
                    failed = pending
                    last_error = f"{code}: {error_message(exc)}"
                except NETWORK_ERRORS as exc:
                    failed = pending
                    last_error = str(exc)
                else:
                    failed, throttled, last_error = self._settle(pending, response, result)
            if throttled:
                result.throttled_calls += 1
                self.limiter.on_throttle()
            elif not failed:
                self.limiter.on_success()
            if not failed:
                break
            attempt += 1
            if attempt >= self.retry.max_attempts:
                raise SendError(
                    f"SQS did not accept {len(failed)} message(s) after {attempt} attempts "
                    f"(last error {last_error}); progress is saved — run again to resume"
                )
            result.retried_entries += len(failed)
            self.sleep(self.retry.delay(attempt, self.rng))
            pending = failed
        return result

    def _settle(
        self,
        pending: list[dict[str, str]],
        response: SendMessageBatchResultTypeDef,
        result: SendResult,
    ) -> tuple[list[dict[str, str]], bool, str]:
        """Count successes; return entries to retry, whether SQS throttled, last error."""
        settled = settle_batch(pending, response)
        result.sent += settled.sent
        result.rejected.extend(
            Rejected(f.entry["MessageBody"], f.code, f.message) for f in settled.rejected
        )
        retry = settled.retry
        throttled = any(f.code in THROTTLING_CODES for f in retry)
        last = settled.failures[-1] if settled.failures else None
        last_error = f"{last.code}: {last.message}" if last else ""
        return [dict(f.entry) for f in retry], throttled, last_error


# --------------------------------------------------------------------------- many batches

T = TypeVar("T")


class Dispatcher:
    """Runs ``BatchSender.send`` for up to ``max_in_flight`` batches at a time.

    ``submit`` blocks while the window is full, which is what keeps memory flat: the
    reader can never run ahead of SQS by more than ``max_in_flight`` batches.
    """

    def __init__(self, sender: BatchSender, *, workers: int, max_in_flight: int) -> None:
        self.sender = sender
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sqs-send")
        self._slots = threading.Semaphore(max(1, max_in_flight))
        self._done: queue.SimpleQueue[Future[SendResult]] = queue.SimpleQueue()
        self.in_flight = 0

    def submit(self, batch: Batch) -> None:
        self._slots.acquire()
        self.in_flight += 1
        future = self._pool.submit(self.sender.send, batch)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future[SendResult]) -> None:
        self._slots.release()
        self._done.put(future)

    def completed(
        self, *, block: bool = False, timeout: float | None = None
    ) -> list[Future[SendResult]]:
        """Futures finished since the last call (waits for one if ``block``)."""
        done: list[Future[SendResult]] = []
        if block and self.in_flight:
            try:
                done.append(self._done.get(timeout=timeout))
            except queue.Empty:
                return done
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        """Quit now: queued batches are dropped, running ones stop before their next try."""
        self.sender.cancelled.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class Watermark(Generic[T]):
    """Acknowledgements arrive in any order; progress advances only over a gap-free prefix.

    Every batch (and every end-of-input marker) gets the next sequence number with a
    ticket saying how far its input is read once it is acknowledged. ``ack`` returns the
    tickets the contiguous acknowledged prefix just passed, oldest first: saving the last
    of them can never skip a batch that is still in flight.
    """

    def __init__(self) -> None:
        self._tickets: dict[int, T] = {}
        self._acked: set[int] = set()
        self._next = 0
        self._low = 0

    def issue(self, ticket: T) -> int:
        seq = self._next
        self._tickets[seq] = ticket
        self._next += 1
        return seq

    def ack(self, seq: int) -> list[T]:
        self._acked.add(seq)
        passed: list[T] = []
        while self._low in self._acked:
            self._acked.discard(self._low)
            passed.append(self._tickets.pop(self._low))
            self._low += 1
        return passed

    @property
    def outstanding(self) -> int:
        return len(self._tickets)
