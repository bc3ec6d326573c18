"""What one message did (:class:`MessageResult`), and the S3 error texts its log line carries.

``imgsearch.ingest`` fills a result per message, ``imgsearch.batch`` writes the vectors
the results hold and the handler logs and counts them; this module is what they share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError, ParamValidationError

from imgsearch import converge
from imgsearch.aws_errors import client_error_text
from imgsearch.contract import OUTCOME_FIELDS, SUCCESS_OUTCOMES, Outcome
from imgsearch.vectors import VectorRecord

ACCESS_DENIED_HINT = (
    "; if the bucket uses SSE-KMS with a customer-managed key, set source_kms_key_arn (and "
    "let the embedder's role use the key in its key policy); if another account owns the "
    "bucket, set source_bucket_owner"
)
"""Appended to an S3 AccessDenied: S3 answers a missing kms:Decrypt and a wrong
``ExpectedBucketOwner`` with the same 403 AccessDenied as a missing s3:GetObject."""


class Log(Protocol):
    """What the embedder logs through: a ``logging.Logger`` or Powertools' ``Logger``."""

    def warning(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...

    def exception(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...


@dataclass
class MessageResult:
    """What happened to one message; ``fields`` go into its log line."""

    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    record: VectorRecord | None = None
    """The vector to write (``embedded``, ``metadata_upgraded``), flushed once per batch."""
    bytes_read: int = 0
    embed_ms: float | None = None
    retries: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.outcome in SUCCESS_OUTCOMES

    def end(
        self, outcome: Outcome, reason: str | None = None, detail: str | None = None
    ) -> MessageResult:
        """Set the outcome (and the reason for a failure); returns ``self``."""
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
        return self

    def fail(self, reason: str, detail: str, *, transient: bool) -> MessageResult:
        return self.end("transient_failure" if transient else "permanent_failure", reason, detail)


def keeping_vector(result: MessageResult, had_vector: bool) -> MessageResult:
    """Say in the log line that an earlier version's vector stays beside this failure."""
    if had_vector:
        result.fields[OUTCOME_FIELDS.earlier_vector_kept] = True
    return result


def s3_error_text(exc: ClientError, reason: str) -> str:
    """The error as logged, naming the settings that fix an access denial."""
    text = client_error_text(exc)
    return text + ACCESS_DENIED_HINT if reason == converge.S3_ACCESS_DENIED else text


def refused_name(result: MessageResult, exc: ParamValidationError) -> MessageResult:
    """botocore refused the message's bucket or key: no request about it can succeed."""
    return result.fail(converge.INVALID_MESSAGE, str(exc), transient=False)


__all__ = [
    "ACCESS_DENIED_HINT",
    "Log",
    "MessageResult",
    "keeping_vector",
    "refused_name",
    "s3_error_text",
]
