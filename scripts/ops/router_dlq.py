"""``dlq list --router`` and ``dlq redrive --router``: the router's dead-letter queue.

The dlq operation's second half (:mod:`scripts.ops.dlq` is the embedding queue's).
Lambda puts an asynchronous invocation that failed every retry on the function's
dead-letter queue unchanged: the body is the S3 notification event, and the message
attributes ``RequestID``, ``ErrorCode`` and ``ErrorMessage`` (truncated to 1 KB) say
why (Lambda Developer Guide, "Dead-letter queues"). So a listing needs no logs: it
shows the event's objects and the router's error.

**Redrive re-enqueues the events' objects through the core's enqueue path**
(``imgsearch.enqueue.messages_from_event`` + ``send_messages``, the router's own code),
not by re-invoking the router, because:

* a DLQ message is deleted only after SQS accepted every message of its event; an
  asynchronous re-invoke confirms nothing, and a synchronous one needs
  ``lambda:InvokeFunction`` and a free slot of the router's concurrency;
* it works whatever broke the router (its role, its code, its configuration), as long
  as the operator can send to the queue;
* the messages are the ones the router would have built: the same selection, the same
  ``MessageGroupId`` and ``MessageDeduplicationId`` (derived from the object version), so
  messages the router did send before failing collapse in SQS's deduplication window.

It needs the deployed selection and ``message_groups`` (the config the command runs
with). ``StartMessageMoveTask`` is no option: it would copy S3 events, not pipeline
messages, into the FIFO queue. An event older than the queue's state is harmless: the
embedder converges on the object as it is now (a stale upsert is skipped, a delete
checks that the object is gone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from imgsearch.config import PipelineConfig
from imgsearch.enqueue import messages_from_event, send_messages
from imgsearch.selection import KeySelection
from scripts.ops.dlq import (
    DlqListing,
    ListedEntry,
    body_preview,
    peek,
    queue_depth,
)
from scripts.ops.dlq_batches import delete_moved, receive_batches
from scripts.ops.failure_log import millis_to_iso

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef


@dataclass
class RouterDlqEntry(ListedEntry):
    """One failed router invocation: its event's objects and the router's error."""

    message_id: str
    receive_count: int | None
    sent_at: str | None
    body: str
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    objects: list[str] = field(default_factory=list)
    """``kind s3://bucket/key`` per message the event makes (what a redrive sends)."""
    skipped: list[str] = field(default_factory=list)
    """Records the router skips too (test events, keys outside the selection)."""
    body_error: str | None = None

    @property
    def why(self) -> str:
        if self.body_error:
            return f"not an S3 event: {self.body_error}"
        if self.error_message:
            code = f" (HTTP {self.error_code})" if self.error_code else ""
            return f"{self.error_message}{code}"
        return "no ErrorMessage attribute: not put here by Lambda"

    @property
    def body_preview(self) -> str:
        return body_preview(self.body)


def _attribute(message: MessageTypeDef, name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name)
    text = value.get("StringValue") if value else None
    return str(text) if text is not None else None


def _event(body: str) -> dict[str, Any]:
    """The S3 notification event in a body, or ValueError saying what it is instead.

    Anyone who may write the DLQ can put anything there: a body nested deeper than
    Python's recursion limit is "not JSON" too, never a crashed listing or redrive.
    """
    try:
        event = json.loads(body)
    except RecursionError:
        raise ValueError("not JSON (RecursionError)") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(event, dict) or not (
        isinstance(event.get("Records"), list) or event.get("Event") == "s3:TestEvent"
    ):
        raise ValueError("no Records list")
    return event


def describe(message: MessageTypeDef, selection: KeySelection) -> RouterDlqEntry:
    attrs = message.get("Attributes") or {}
    count = attrs.get("ApproximateReceiveCount")
    body = str(message.get("Body") or "")
    entry = RouterDlqEntry(
        message_id=str(message.get("MessageId")),
        receive_count=int(count) if count is not None and str(count).isdigit() else None,
        sent_at=millis_to_iso(attrs.get("SentTimestamp")),
        body=body,
        request_id=_attribute(message, "RequestID"),
        error_code=_attribute(message, "ErrorCode"),
        error_message=_attribute(message, "ErrorMessage"),
    )
    try:
        event = _event(body)
    except ValueError as exc:
        entry.body_error = str(exc)
        return entry
    messages, skipped = messages_from_event(event, selection)
    entry.objects = [f"{m.kind} {m.uri}" for m in messages]
    entry.skipped = [
        f"{s.reason}: s3://{s.bucket}/{s.key}" if s.bucket and s.key else f"{s.reason}: {s.detail}"
        for s in skipped
    ]
    return entry


def list_router_dlq(
    cfg: PipelineConfig, *, sqs: SQSClient, dlq_url: str, limit: int
) -> DlqListing[RouterDlqEntry]:
    """Up to ``limit`` messages, received and released again: listing moves nothing."""
    depth = queue_depth(sqs, dlq_url)
    listing: DlqListing[RouterDlqEntry] = DlqListing(queue=dlq_url, depth=depth, entries=[])
    if depth == 0:
        return listing
    selection = KeySelection.from_config(cfg)
    listing.entries = [describe(m, selection) for m in peek(sqs, dlq_url, limit)]
    hidden = depth - len(listing.entries)
    if hidden > 0:
        listing.notes.append(f"{hidden} more message(s) not listed (raise --max to see them)")
    return listing


@dataclass
class RouterRedriveReport:
    method: str = "re-enqueue"
    """The events' objects sent to the queue with the router's code (module docstring)."""
    moved: int = 0
    """DLQ messages whose every object message SQS accepted (then deleted from the DLQ)."""
    messages_sent: int = 0
    failed: int = 0
    """DLQ messages left in the DLQ (not an S3 event, or a message SQS did not take)."""
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def redrive_router_dlq(
    cfg: PipelineConfig,
    *,
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    max_messages: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> RouterRedriveReport:
    """Re-enqueue each DLQ'd event's objects; delete the event once all are queued."""
    selection = KeySelection.from_config(cfg)
    report = RouterRedriveReport()
    seen: set[str] = set()
    for received in receive_batches(
        sqs, dlq_url, max_messages=max_messages, handled=lambda: report.moved + report.failed
    ):
        batch = [m for m in received if str(m.get("MessageId")) not in seen]
        if not batch:
            return report  # only messages this run already left behind
        done = []
        for message in batch:
            seen.add(str(message.get("MessageId")))
            if _requeue(message, cfg, selection, sqs, queue_url, report):
                done.append(message)
            else:
                report.failed += 1
        for message, code in delete_moved(sqs, dlq_url, done):
            report.errors.append(
                f"message {message['MessageId']} was re-enqueued but not deleted from the "
                f"router's DLQ ({code}); a re-run within 5 minutes is deduplicated, a later "
                "one only repeats work"
            )
        report.moved += len(done)
        if progress is not None:
            progress(f"re-enqueued the objects of {report.moved} event(s)")
    return report


def _requeue(
    message: MessageTypeDef,
    cfg: PipelineConfig,
    selection: KeySelection,
    sqs: SQSClient,
    queue_url: str,
    report: RouterRedriveReport,
) -> bool:
    """Send one DLQ'd event's messages; True when SQS took all of them."""
    message_id = str(message.get("MessageId"))
    try:
        event = _event(str(message.get("Body") or ""))
    except ValueError as exc:
        report.errors.append(f"message {message_id}: not an S3 event ({exc}); left in the DLQ")
        return False
    messages, skipped = messages_from_event(event, selection)
    if skipped and not messages:
        report.notes.append(
            f"message {message_id}: nothing to enqueue (the router skips it too: "
            f"{', '.join(sorted({s.reason for s in skipped}))}); deleted"
        )
    sent = send_messages(sqs, queue_url, messages, groups=cfg.message_groups)
    report.messages_sent += sent.sent
    if sent.failed:
        codes = ", ".join(sorted({f["Code"] for f in sent.failed}))
        report.errors.append(
            f"message {message_id}: {len(sent.failed)} of {len(messages)} object message(s) "
            f"not accepted by SQS ({codes}); left in the DLQ"
        )
        return False
    return True


__all__ = [
    "RouterDlqEntry",
    "RouterRedriveReport",
    "describe",
    "list_router_dlq",
    "redrive_router_dlq",
]
