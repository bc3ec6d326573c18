"""One SQS batch through the embedder: scheduling, the one vector write, per-object order.

Messages run in lanes, one per object (vector key): a lane's messages one after the
other in batch order, the lanes concurrently on a small thread pool (``embed_pool_size``),
also the lanes of one message group: a FIFO queue with a backlog hands out batches of a
single group, so running a group one message at a time would leave the pool idle at
scale. Each message is converged by :class:`~imgsearch.ingest.ObjectConverger`. Deletes
happen at once; all new vectors of
the batch go out together in one ``PutVectors`` (split only by the service limits), so
raising the batch size does not multiply S3 Vectors requests. If that write fails, the
vectors are written again one by one, so that a vector S3 Vectors refuses fails only
its own message.

**Per-object order** (the one owner of the rule, :func:`hold_back_after_failures`): in
each group, every message after the first one that is not acknowledged is handed back
too, so SQS redelivers them in their order. While a lane runs, the rule also saves
the work: a message of the same object after a failure is not started. Other objects
of the group run meanwhile; what they did is idempotent and is done again, cheaply
(``unchanged``), when SQS redelivers them. After the write, the rule is applied to the
whole batch, also to the messages that followed a vector that could not be written.
:func:`partial_batch_response` then reports every message not acknowledged.

No message, however crafted, ends the invocation: a body that does not parse is a
permanent ``invalid_message``, and any exception while one message is handled ends
that message alone, as a transient ``unexpected_error`` (with a logged traceback).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from imgsearch import converge
from imgsearch.aws_errors import client_error_text
from imgsearch.ingest import Log, MessageResult, ObjectConverger
from imgsearch.messages import MessageError, parse_message, vector_key
from imgsearch.vectors import VectorRecord

_SUPERSEDING: frozenset[str] = frozenset({"embedded", "deleted", "permanent_failure"})
"""Outcomes about an object's current state: they replace a put still waiting for the write."""


@dataclass(frozen=True)
class BatchItem:
    message_id: str
    body: str
    group_id: str | None = None
    receive_count: int = 1
    """SQS's ApproximateReceiveCount: which delivery of the message this is."""


def hold_back_after_failures(
    items: Sequence[BatchItem], results: Mapping[str, MessageResult]
) -> None:
    """Keep per-object order: after a group's first unacknowledged message, hand back the rest.

    What an acknowledged follower did is idempotent and is simply done again on
    redelivery (it then finds its vector current and ends ``unchanged``).
    """
    failed: set[str] = set()
    for item in items:
        group = _group_of(item)
        result = results[item.message_id]
        if group in failed and result.acknowledged:
            result.record = None
            result.end(
                "transient_failure",
                converge.GROUP_BLOCKED,
                "an earlier message of this group failed; SQS redelivers both in order",
            )
        if not result.acknowledged:
            failed.add(group)


def partial_batch_response(
    items: Sequence[BatchItem], results: Mapping[str, MessageResult]
) -> dict[str, list[dict[str, str]]]:
    """The SQS partial-batch response: every message not acknowledged, in batch order."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": item.message_id}
            for item in items
            if not results[item.message_id].acknowledged
        ]
    }


def _group_of(item: BatchItem) -> str:
    return item.group_id or item.message_id


class _GroupFailures:
    """The first failed position of each group so far, shared by the lanes.

    A message not yet started after a failure earlier in its group is not started at all
    (it would be handed back anyway); one already running finishes, and
    :func:`hold_back_after_failures` hands it back after the fact.
    """

    def __init__(self, items: Sequence[BatchItem]) -> None:
        self._position = {item.message_id: i for i, item in enumerate(items)}
        self._first: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, item: BatchItem) -> None:
        group, at = _group_of(item), self._position[item.message_id]
        with self._lock:
            self._first[group] = min(at, self._first.get(group, at))

    def blocks(self, item: BatchItem) -> bool:
        with self._lock:
            first = self._first.get(_group_of(item))
        return first is not None and first < self._position[item.message_id]


def _lane_of(item: BatchItem) -> str:
    """The object a message is about (its vector key); a body that does not parse is its
    own lane (it ends as ``invalid_message`` without touching anything)."""
    try:
        msg = parse_message(item.body)
    except MessageError:
        return f"message:{item.message_id}"
    return vector_key(msg.bucket, msg.key)


def _object_fields(item: BatchItem) -> dict[str, Any]:
    """``bucket``, ``key`` and ``vector_key`` for a failed message's log line, when its
    body parses (so the line can be found by object); empty when it does not."""
    try:
        msg = parse_message(item.body)
    except MessageError:
        return {}
    return {"bucket": msg.bucket, "key": msg.key, "vector_key": vector_key(msg.bucket, msg.key)}


class BatchRunner:
    """Runs a batch of messages through one :class:`ObjectConverger` (module docstring)."""

    def __init__(
        self,
        converger: ObjectConverger,
        *,
        pool_size: int,
        logger: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.converger = converger
        self.pool_size = pool_size
        self.log: Log = logger or logging.getLogger(__name__)
        self._clock = clock

    def run(
        self, items: Sequence[BatchItem], deadline: float | None = None
    ) -> dict[str, MessageResult]:
        """Process a batch; results by message id, in batch order. Never raises."""
        lanes: dict[str, list[BatchItem]] = {}
        for item in items:
            lanes.setdefault(_lane_of(item), []).append(item)
        failures = _GroupFailures(items)
        if len(lanes) <= 1 or self.pool_size <= 1:
            per_lane = [self._run_lane(lane, deadline, failures) for lane in lanes.values()]
        else:
            workers = min(self.pool_size, len(lanes))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                per_lane = list(
                    pool.map(lambda ln: self._run_lane(ln, deadline, failures), lanes.values())
                )
        results: dict[str, MessageResult] = {}
        for lane_results in per_lane:
            results.update(lane_results)
        self._flush([results[item.message_id] for item in items])
        hold_back_after_failures(items, results)
        return {item.message_id: results[item.message_id] for item in items}

    # ------------------------------------------------------------------ one lane

    def _run_lane(
        self, items: list[BatchItem], deadline: float | None, failures: _GroupFailures
    ) -> dict[str, MessageResult]:
        results: dict[str, MessageResult] = {}
        pending: dict[str, MessageResult] = {}  # vector key -> result whose put is not written
        blocked = False
        for item in items:
            try:
                blocked = blocked or failures.blocks(item)
                result = self._run_one(item, deadline, blocked, pending)
            except Exception as exc:  # a bug must not end the batch (module docstring)
                fields = _object_fields(item)
                self.log.exception(
                    "unexpected error", extra={"message_id": item.message_id, **fields}
                )
                result = MessageResult("transient_failure", fields=fields).fail(
                    converge.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", transient=True
                )
            result.fields = {"message_id": item.message_id, **result.fields}
            if not result.acknowledged:
                blocked = True
                failures.record(item)
            results[item.message_id] = result
        return results

    def _run_one(
        self,
        item: BatchItem,
        deadline: float | None,
        blocked: bool,
        pending: dict[str, MessageResult],
    ) -> MessageResult:
        try:
            msg = parse_message(item.body)
        except MessageError as exc:
            return MessageResult("permanent_failure", converge.INVALID_MESSAGE, str(exc))
        vkey = vector_key(msg.bucket, msg.key)
        fields: dict[str, Any] = {"bucket": msg.bucket, "key": msg.key, "vector_key": vkey}
        if blocked:
            return MessageResult(
                "transient_failure",
                converge.GROUP_BLOCKED,
                "an earlier message of this group failed; SQS redelivers both in order",
                fields,
            )
        if deadline is not None and self._clock() >= deadline:
            return MessageResult(
                "transient_failure",
                converge.DEADLINE_EXCEEDED,
                "no time left in this invocation",
                fields,
            )
        waiting = {k: r.record for k, r in pending.items() if r.record is not None}
        result = self.converger.converge(msg, deadline, waiting, receive_count=item.receive_count)
        # A later result about the object's current state (re-embedded, deleted, or now
        # unembeddable) supersedes a put of an earlier version still waiting for the write.
        earlier = pending.get(vkey)
        if earlier is not None and result.outcome in _SUPERSEDING:
            earlier.record = None
            earlier.fields["superseded_in_batch"] = True
            del pending[vkey]
        if result.record is not None:
            pending[vkey] = result
        return result

    # ------------------------------------------------------------------ the write

    def _flush(self, results: Sequence[MessageResult]) -> None:
        """Write every pending vector of the batch; isolate the ones S3 Vectors refuses."""
        writers = [r for r in results if r.record is not None]
        if not writers:
            return
        failure = self._put(writers)
        if failure is None:
            return
        self.log.warning("PutVectors failed for the batch", extra={"detail": failure})
        if len(writers) == 1:
            _put_failed(writers[0], failure)
            return
        for writer in writers:
            failure = self._put([writer])
            if failure is not None:
                _put_failed(writer, failure)

    def _put(self, writers: Sequence[MessageResult]) -> str | None:
        """Write the writers' vectors; None on success, else why it failed."""
        records: list[VectorRecord] = [w.record for w in writers if w.record is not None]
        try:
            self.converger.index.put(records)
        except ClientError as exc:
            return client_error_text(exc)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None


def _put_failed(result: MessageResult, detail: str) -> None:
    result.record = None
    result.fail(converge.PUT_VECTORS_FAILED, detail, transient=True)
