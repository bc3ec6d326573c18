"""``dlq list`` and ``dlq redrive``: why messages failed, and sending them back.

**list** receives the DLQ's messages with a short visibility timeout and releases them
again at once (``ChangeMessageVisibility`` to 0), so listing moves nothing. For each
message it shows the object, the receive count and timestamps SQS keeps, and *why*:
the embedder's last failure line for that object from CloudWatch Logs (its one JSON
line per message carries ``outcome``, ``reason`` and ``detail``), plus the object's and
its vector's state now. A FIFO queue hands out only the first message of each message
group while that one is held, so a group with several failed messages shows its first;
the count of the others is reported, never hidden.

**redrive** starts SQS's own ``StartMessageMoveTask`` (DLQ -> source queue). Where that
API is missing (an SQS emulator, or a region/queue type without it) it falls back to
receive -> ``SendMessageBatch`` to the queue -> delete from the DLQ, keeping each
message's ``MessageGroupId`` (per-object order) and giving it a fresh deduplication id
derived from its DLQ message id: fresh, so the main queue's deduplication window
cannot swallow it; derived, so re-running after a crash between send and delete does
not enqueue it twice. A message is deleted from the DLQ only after SQS accepted its copy.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botocore.exceptions import ClientError

from imgsearch.aws_errors import error_code
from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.messages import (
    MessageError,
    UnparseableBody,
    group_id,
    parse_message,
    vector_key,
)
from imgsearch.s3uri import parse_s3_uri
from imgsearch.vectors import VectorIndex
from scripts.ops.dlq_batches import delete_moved, receive_batches
from scripts.ops.failure_log import LastError, LogLookup, millis_to_iso
from scripts.ops.objects import SourceBucket, object_exists

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

MOVE_TASK_UNSUPPORTED = frozenset(
    {
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "InvalidAction",
        "UnknownOperationException",
        "UnknownOperation",
        "NotImplemented",
    }
)
"""Errors meaning "this SQS has no StartMessageMoveTask for this queue": fall back."""
PEEK_VISIBILITY_SECONDS = 30
BODY_PREVIEW_CHARS = 200
"""A listing quotes at most this much of a body: one may be 256 KiB of anything."""


# --------------------------------------------------------------------------- list


class ListedEntry:
    """What a dead-letter listing shows of one message, in either DLQ: its fields and why."""

    @property
    def why(self) -> str:
        raise NotImplementedError

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses
        out["why"] = self.why
        return out


EntryT = TypeVar("EntryT", bound=ListedEntry)


@dataclass
class DlqListing(Generic[EntryT]):
    """One dead-letter queue's depth and its first messages (either DLQ)."""

    queue: str
    depth: int
    entries: list[EntryT]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "depth": self.depth,
            "listed": len(self.entries),
            "messages": [e.as_dict() for e in self.entries],
            "notes": self.notes,
        }


@dataclass
class DlqEntry(ListedEntry):
    message_id: str
    group_id: str | None
    receive_count: int | None
    sent_at: str | None
    first_received_at: str | None
    body: str
    uri: str | None = None
    kind: str | None = None
    origin: str | None = None
    vector_key: str | None = None
    body_error: str | None = None
    object_state: str | None = None
    """``exists`` / ``gone`` / ``unknown: ...``"""
    vector_state: str | None = None
    """``present`` / ``missing`` / ``unknown: ...``"""
    last_error: LastError | None = None

    @property
    def body_preview(self) -> str:
        """The body as a terminal shows it: see :func:`body_preview`."""
        return body_preview(self.body)

    @property
    def why(self) -> str:
        if self.body_error:
            return f"not a pipeline message: {self.body_error}"
        if self.last_error is not None:
            err = self.last_error
            text = f"{err.outcome}: {err.reason or '?'}"
            return f"{text}: {err.detail}" if err.detail else text
        return "no failure line found in the embedder's logs"


def queue_depth(sqs: SQSClient, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def peek(sqs: SQSClient, url: str, limit: int) -> list[MessageTypeDef]:
    """Up to ``limit`` messages, received and released again (visibility 0)."""
    held: list[MessageTypeDef] = []
    try:
        while len(held) < limit:
            reply = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(LIMITS.sqs_batch_max_entries, limit - len(held)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = reply.get("Messages") or []
            if not batch:
                break
            held.extend(batch)
    finally:
        release(sqs, url, held)
    return held


def release(sqs: SQSClient, url: str, messages: Sequence[MessageTypeDef]) -> None:
    """Make received messages visible again right away."""
    for start in range(0, len(messages), LIMITS.sqs_batch_max_entries):
        chunk = messages[start : start + LIMITS.sqs_batch_max_entries]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(chunk)
            ],
        )


def describe(message: MessageTypeDef) -> DlqEntry:
    attrs = message.get("Attributes") or {}
    body = str(message.get("Body") or "")
    count = attrs.get("ApproximateReceiveCount")
    entry = DlqEntry(
        message_id=str(message.get("MessageId")),
        group_id=attrs.get("MessageGroupId"),
        receive_count=int(count) if count is not None and str(count).isdigit() else None,
        sent_at=millis_to_iso(attrs.get("SentTimestamp")),
        first_received_at=millis_to_iso(attrs.get("ApproximateFirstReceiveTimestamp")),
        body=body,
    )
    try:
        msg = parse_message(body)
    except UnparseableBody as exc:  # say so; its text may be 200 kB of brackets
        entry.body_error = f"unparseable ({exc.cause})"
        return entry
    except MessageError as exc:
        entry.body_error = str(exc)
        return entry
    entry.uri, entry.kind, entry.origin = msg.uri, msg.kind, msg.origin
    entry.vector_key = vector_key(msg.bucket, msg.key)
    return entry


def body_preview(body: str) -> str:
    """At most :data:`BODY_PREVIEW_CHARS` of ``body``, control characters escaped.

    A hostile body may hold terminal escape sequences or megabytes; the listing shows
    what it is without letting it act on the operator's terminal.
    """
    parts: list[str] = []
    shown = used = 0
    for c in body[:BODY_PREVIEW_CHARS]:
        part = c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        if used + len(part) > BODY_PREVIEW_CHARS:
            break
        parts.append(part)
        shown, used = shown + 1, used + len(part)
    head = "".join(parts)
    return head if shown == len(body) else f"{head}... ({len(body)} characters)"


def object_state(s3: S3Client, uri: str, source: SourceBucket | None = None) -> str:
    """``exists`` / ``gone`` / ``unknown: <code>`` (a listing shows it, never fails on it);
    on ``source``'s bucket naming its owner (another account's answers 403: unknown)."""
    location = parse_s3_uri(uri)
    owner = source.owner_for(location.bucket) if source is not None else None
    try:
        return "exists" if object_exists(s3, location.bucket, location.key, owner=owner) else "gone"
    except ClientError as exc:
        return f"unknown: {error_code(exc)}"


def list_dlq(
    *,
    sqs: SQSClient,
    s3: S3Client,
    index: VectorIndex | None,
    logs: LogLookup,
    dlq_url: str,
    limit: int,
    source: SourceBucket | None = None,
) -> DlqListing[DlqEntry]:
    """The DLQ's messages, peeked (nothing moves); ``index`` None: without S3 Vectors
    access (``serve --api``), so each entry's ``vector_state`` stays unknown (None).
    ``source``: the source bucket and its owner, pinned on each object's ``HeadObject``."""
    depth = queue_depth(sqs, dlq_url)
    listing: DlqListing[DlqEntry] = DlqListing(queue=dlq_url, depth=depth, entries=[])
    if depth == 0:
        return listing
    messages = peek(sqs, dlq_url, limit)
    entries = [describe(m) for m in messages]
    keys = [e.vector_key for e in entries if e.vector_key]
    stored = index.get(keys) if keys and index is not None else {}
    for entry, message in zip(entries, messages, strict=True):
        if entry.vector_key is None or entry.uri is None:
            continue
        if index is not None:
            entry.vector_state = "present" if entry.vector_key in stored else "missing"
        entry.object_state = object_state(s3, entry.uri, source)
        sent = (message.get("Attributes") or {}).get("SentTimestamp")
        entry.last_error = logs.last_failure(
            entry.vector_key, int(sent) if sent and str(sent).isdigit() else None
        )
    listing.entries = entries
    hidden = depth - len(entries)
    if hidden > 0:
        if len(entries) >= limit:
            listing.notes.append(f"{hidden} more message(s) not listed (raise --max to see them)")
        else:
            listing.notes.append(
                f"{hidden} more message(s) wait behind the first of their FIFO message group "
                "and cannot be received until it is gone; `dlq redrive` moves them all"
            )
    return listing


# --------------------------------------------------------------------------- redrive


@dataclass
class RedriveReport:
    method: str
    """``move-task`` (SQS StartMessageMoveTask) or ``receive-send-delete``."""
    moved: int = 0
    failed: int = 0
    task_handle: str | None = None
    task_status: str | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_arn(sqs: SQSClient, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def redrive_dedup_id(dlq_message_id: str) -> str:
    """Fresh for the main queue, yet the same for one DLQ message (safe re-runs)."""
    return hashlib.sha256(f"redrive\x00{dlq_message_id}".encode()).hexdigest()


def redrive(
    cfg: PipelineConfig,
    *,
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    max_messages: int | None = None,
    rate: int | None = None,
    wait: bool = False,
    poll_seconds: float = 2.0,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveReport:
    """Move the DLQ's messages back to the queue (see the module docstring)."""
    source, destination = queue_arn(sqs, dlq_url), queue_arn(sqs, queue_url)
    if max_messages is None:
        request: dict[str, Any] = {"SourceArn": source, "DestinationArn": destination}
        if rate:
            request["MaxNumberOfMessagesPerSecond"] = rate
        try:
            handle = sqs.start_message_move_task(**request)["TaskHandle"]
        except ClientError as exc:
            if error_code(exc) not in MOVE_TASK_UNSUPPORTED:
                raise
            report = RedriveReport("receive-send-delete")
            report.notes.append(
                f"StartMessageMoveTask is not available here ({error_code(exc)}); "
                "moved the messages by receive, send, delete"
            )
        else:
            report = RedriveReport("move-task", task_handle=str(handle), task_status="RUNNING")
            if wait:
                _wait_for_task(sqs, source, report, poll_seconds, progress, sleep)
            return report
    else:
        report = RedriveReport("receive-send-delete")
    _receive_send_delete(cfg, sqs, dlq_url, queue_url, max_messages, report, progress)
    return report


def _wait_for_task(
    sqs: SQSClient,
    source_arn: str,
    report: RedriveReport,
    poll_seconds: float,
    progress: Callable[[str], None] | None,
    sleep: Callable[[float], None],
) -> None:
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results") or []
        task = next((t for t in tasks if t.get("TaskHandle") == report.task_handle), None)
        if task is None and tasks:
            task = tasks[0]
        if task is None:
            report.notes.append("the move task is no longer listed")
            return
        report.task_status = str(task.get("Status"))
        report.moved = int(task.get("ApproximateNumberOfMessagesMoved") or 0)
        if report.task_status in ("COMPLETED", "CANCELLED", "FAILED"):
            if task.get("FailureReason"):
                report.errors.append(str(task["FailureReason"]))
            return
        if progress is not None:
            total = task.get("ApproximateNumberOfMessagesToMove")
            progress(f"moved {report.moved}/{total if total is not None else '?'}")
        sleep(poll_seconds)


def _receive_send_delete(
    cfg: PipelineConfig,
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    max_messages: int | None,
    report: RedriveReport,
    progress: Callable[[str], None] | None,
) -> None:
    for batch in receive_batches(
        sqs, dlq_url, max_messages=max_messages, handled=lambda: report.moved + report.failed
    ):
        entries = {str(i): _send_entry(cfg, m, str(i)) for i, m in enumerate(batch)}
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(entries.values()))
        sent = {ok["Id"] for ok in response.get("Successful") or []}
        for bad in response.get("Failed") or []:
            report.failed += 1
            report.errors.append(
                f"message {batch[int(bad['Id'])]['MessageId']}: {bad.get('Code')}: "
                f"{bad.get('Message', '')} (left in the DLQ)"
            )
        done = [m for i, m in enumerate(batch) if str(i) in sent]
        for message, code in delete_moved(sqs, dlq_url, done):
            report.errors.append(
                f"message {message['MessageId']} was sent but not deleted from "
                f"the DLQ ({code}); a re-run is deduplicated"
            )
        report.moved += len(done)
        if progress is not None:
            progress(f"moved {report.moved} message(s)")


def _send_entry(
    cfg: PipelineConfig, message: MessageTypeDef, entry_id: str
) -> SendMessageBatchRequestEntryTypeDef:
    attrs = message.get("Attributes") or {}
    group = attrs.get("MessageGroupId")
    if not group:  # a message without a group (not from our FIFO queue): derive the object's
        try:
            msg = parse_message(message["Body"])
            group = group_id(msg.bucket, msg.key, cfg.message_groups)
        except MessageError:
            group = "redrive"
    entry: SendMessageBatchRequestEntryTypeDef = {
        "Id": entry_id,
        "MessageBody": message["Body"],
        "MessageGroupId": group,
        "MessageDeduplicationId": redrive_dedup_id(str(message["MessageId"])),
    }
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    return entry


__all__ = [
    "MOVE_TASK_UNSUPPORTED",
    "DlqEntry",
    "DlqListing",
    "ListedEntry",
    "RedriveReport",
    "body_preview",
    "describe",
    "list_dlq",
    "peek",
    "queue_arn",
    "redrive",
    "redrive_dedup_id",
]
