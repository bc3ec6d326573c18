"""Putting messages on the FIFO queue: S3 events -> messages, and SendMessageBatch of 10.

Shared by the router Lambda and the backfill script, so that a live event and a
backfill row for the same object version carry the same ``MessageGroupId`` and
``MessageDeduplicationId`` (see ``imgsearch.messages``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote_plus

from imgsearch.aws_errors import backoff_delay
from imgsearch.limits import LIMITS
from imgsearch.messages import (
    MessageError,
    ObjectMessage,
    ObjectNameError,
    from_s3_record,
    is_test_event,
    to_send_entry,
)
from imgsearch.selection import KeySelection

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# Why an S3 event record did not become a message (stable, logged).
SKIP_TEST_EVENT = "test_event"
SKIP_PREFIX = "prefix"
SKIP_SUFFIX = "suffix"
SKIP_NOT_OBJECT_EVENT = "not_object_event"
SKIP_INVALID_NAME = "invalid_name"
"""A bucket name or key S3 would refuse: the message could never succeed."""


@dataclass(frozen=True)
class Skipped:
    reason: str
    detail: str
    bucket: str | None = None
    key: str | None = None


def messages_from_event(
    event: dict[str, Any], selection: KeySelection
) -> tuple[list[ObjectMessage], list[Skipped]]:
    """The messages an S3 notification event asks for, and what was skipped and why.

    Whatever the event holds (anyone who may invoke the router or write its DLQ can
    send anything), a record it cannot read is skipped as ``not_object_event``.
    """
    if not isinstance(event, dict):
        return [], [Skipped(SKIP_NOT_OBJECT_EVENT, "event: expected a JSON object")]
    if is_test_event(event):
        return [], [Skipped(SKIP_TEST_EVENT, "s3:TestEvent sent when notifications are set up")]
    records = event.get("Records")
    if records is None:
        return [], []
    if not isinstance(records, list):
        return [], [Skipped(SKIP_NOT_OBJECT_EVENT, "field 'Records': expected a list")]
    messages: list[ObjectMessage] = []
    skipped: list[Skipped] = []
    for record in records:
        if isinstance(record, dict) and is_test_event(record):
            skipped.append(Skipped(SKIP_TEST_EVENT, "s3:TestEvent"))
            continue
        try:
            msg = from_s3_record(record)
        except ObjectNameError as exc:
            skipped.append(Skipped(SKIP_INVALID_NAME, str(exc)))
            continue
        except MessageError as exc:
            skipped.append(Skipped(SKIP_NOT_OBJECT_EVENT, str(exc), *_names(record)))
            continue
        why = selection.reason_skipped(msg.key)
        if why is not None:
            skipped.append(
                Skipped(why, f"key is outside the configured {why}es", msg.bucket, msg.key)
            )
            continue
        messages.append(msg)
    return messages, skipped


def _names(record: Any) -> tuple[str | None, str | None]:
    """The bucket and (decoded) key a record names, where they are strings: for the log."""
    s3 = record.get("s3") if isinstance(record, dict) else None
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    obj = s3.get("object") if isinstance(s3, dict) else None
    name = bucket.get("name") if isinstance(bucket, dict) else None
    key = obj.get("key") if isinstance(obj, dict) else None
    return (
        name if isinstance(name, str) else None,
        unquote_plus(key) if isinstance(key, str) else None,
    )


@dataclass(frozen=True)
class EntryFailure:
    """One ``SendMessageBatch`` entry SQS did not accept, and why."""

    entry: Mapping[str, str]
    code: str
    message: str
    sender_fault: bool
    """SQS says the entry itself is invalid: resending it cannot succeed."""


NOT_IN_RESPONSE = "NotInResponse"
"""Code for an entry the response lists neither as successful nor as failed."""


@dataclass(frozen=True)
class Settlement:
    """A ``SendMessageBatch`` response held against the entries that were sent."""

    sent: int
    failures: list[EntryFailure]
    """In the response's order; entries the response did not mention come last."""

    @property
    def rejected(self) -> list[EntryFailure]:
        return [f for f in self.failures if f.sender_fault]

    @property
    def retry(self) -> list[EntryFailure]:
        return [f for f in self.failures if not f.sender_fault]


def settle_batch(entries: Sequence[Mapping[str, str]], response: Mapping[str, Any]) -> Settlement:
    """Which of ``entries`` SQS accepted, rejected (``SenderFault``) or should get again.

    Matched by ``Id``: ids the request did not carry and repeated ids count once or
    not at all, and an entry the response does not mention is to be sent again,
    never taken as sent. Shared by the router and the backfill sender.
    """
    by_id = {e["Id"]: e for e in entries}
    sent = 0
    failures: list[EntryFailure] = []
    for ok in response.get("Successful") or []:
        if by_id.pop(str(ok.get("Id")), None) is not None:
            sent += 1
    for bad in response.get("Failed") or []:
        entry = by_id.pop(str(bad.get("Id")), None)
        if entry is not None:
            failures.append(
                EntryFailure(
                    entry,
                    str(bad.get("Code", "")),
                    str(bad.get("Message", "")),
                    bool(bad.get("SenderFault")),
                )
            )
    failures.extend(
        EntryFailure(entry, NOT_IN_RESPONSE, "the response did not mention this entry", False)
        for entry in by_id.values()
    )
    return Settlement(sent, failures)


@dataclass
class SendReport:
    sent: int = 0
    attempts: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    """Entries still failing after all attempts: ``{"Id","Code","Message","MessageBody"}``."""


def send_messages(
    sqs: SQSClient,
    queue_url: str,
    messages: Iterable[ObjectMessage],
    *,
    groups: int,
    max_attempts: int = 5,
    base_delay: float = 0.1,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> SendReport:
    """Send in ``SendMessageBatch`` calls of 10, retrying only the entries that failed.

    Entries SQS reports as ``SenderFault`` are not retried (the same request cannot
    succeed); server-side failures are retried with full-jitter backoff. Whatever
    still fails is returned in ``SendReport.failed`` for the caller to surface.
    """
    report = SendReport()
    backoff = _Backoff(max_attempts, base_delay, max_delay, sleep, rng)
    batch: list[ObjectMessage] = []
    for msg in messages:
        batch.append(msg)
        if len(batch) == LIMITS.sqs_batch_max_entries:
            _send_batch(sqs, queue_url, batch, groups, report, backoff)
            batch = []
    if batch:
        _send_batch(sqs, queue_url, batch, groups, report, backoff)
    return report


@dataclass(frozen=True)
class _Backoff:
    max_attempts: int
    base_delay: float
    max_delay: float
    sleep: Callable[[float], None]
    rng: Callable[[], float]

    def wait(self, attempt: int) -> None:
        """Full-jitter exponential backoff before retry ``attempt + 1``."""
        self.sleep(
            backoff_delay(attempt - 1, base=self.base_delay, cap=self.max_delay, rng=self.rng)
        )


def _send_batch(
    sqs: SQSClient,
    queue_url: str,
    batch: Sequence[ObjectMessage],
    groups: int,
    report: SendReport,
    backoff: _Backoff,
) -> None:
    entries = {str(i): to_send_entry(msg, groups, str(i)) for i, msg in enumerate(batch)}
    attempt = 0
    while entries:
        attempt += 1
        report.attempts += 1
        sending = cast("list[SendMessageBatchRequestEntryTypeDef]", list(entries.values()))
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=sending)
        settled = settle_batch(list(entries.values()), response)
        report.sent += settled.sent
        entries = {}
        for failure in settled.failures:
            if failure.sender_fault or attempt >= backoff.max_attempts:
                report.failed.append(
                    {
                        "Id": failure.entry["Id"],
                        "Code": failure.code,
                        "Message": failure.message,
                        "MessageBody": failure.entry["MessageBody"],
                    }
                )
            else:
                entries[failure.entry["Id"]] = dict(failure.entry)
        if entries:
            backoff.wait(attempt)
