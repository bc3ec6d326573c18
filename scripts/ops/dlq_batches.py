"""Receiving a dead-letter queue in batches and deleting what was moved: both redrives.

``dlq redrive`` (its receive-send-delete fallback) and ``dlq redrive --router`` move
messages differently (a copy of the body, or the event's objects re-enqueued), but
drain the DLQ the same way: receive up to 10 with a visibility timeout long enough to
move them, stop when nothing comes back or ``max_messages`` are handled, and delete a
message only after the caller moved it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from imgsearch.limits import LIMITS

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

REDRIVE_VISIBILITY_SECONDS = 120
"""How long a received message stays hidden while it is moved (then it is deleted)."""


def receive_batches(
    sqs: SQSClient,
    dlq_url: str,
    *,
    max_messages: int | None,
    handled: Callable[[], int],
) -> Iterator[list[MessageTypeDef]]:
    """Batches of up to 10 messages until the DLQ gives none or ``max_messages`` are handled.

    ``handled`` says how many the caller has moved or given up on so far; each batch
    asks for no more than what is left of ``max_messages``.
    """
    while max_messages is None or handled() < max_messages:
        want = LIMITS.sqs_batch_max_entries
        if max_messages is not None:
            want = min(want, max_messages - handled())
        batch = (
            sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=want,
                VisibilityTimeout=REDRIVE_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages")
            or []
        )
        if not batch:
            return
        yield batch


def delete_moved(
    sqs: SQSClient, dlq_url: str, moved: Sequence[MessageTypeDef]
) -> list[tuple[MessageTypeDef, str]]:
    """Delete ``moved`` from the DLQ, 10 per call: what SQS did not delete, with its code."""
    failed: list[tuple[MessageTypeDef, str]] = []
    for start in range(0, len(moved), LIMITS.sqs_batch_max_entries):
        chunk = moved[start : start + LIMITS.sqs_batch_max_entries]
        deleted = sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ],
        )
        failed.extend(
            (chunk[int(bad["Id"])], str(bad.get("Code"))) for bad in deleted.get("Failed") or []
        )
    return failed


__all__ = ["REDRIVE_VISIBILITY_SECONDS", "delete_moved", "receive_batches"]
