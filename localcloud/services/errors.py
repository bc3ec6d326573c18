"""Service errors as the local cloud sends them: the AWS rest-json and S3's XML shapes.

Both Bedrock Runtime and S3 Vectors are rest-json services: an error is an HTTP status,
an ``x-amzn-ErrorType`` header naming the exception, and a JSON body ``{"message": ...}``.
S3 (rest-xml) answers ``<Error><Code>...</Code><Message>...</Message></Error>``
(:class:`S3Error`). botocore turns either into ``ClientError`` with ``Error.Code`` = the
code, exactly as it does against AWS, so the production code's error handling is
exercised for real.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

STATUS: dict[str, int] = {
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "NotFoundException": 404,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ModelTimeoutException": 408,
    "RequestTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "TooManyRequestsException": 429,
    "ServiceQuotaExceededException": 402,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
"""HTTP status of each exception, as in the botocore service models."""


@dataclass
class ServiceError(Exception):
    """An error answer; raise it anywhere in a handler, the front server renders it."""

    code: str
    message: str
    status: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.status:
            self.status = STATUS.get(self.code, 400)
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> bytes:
        return json.dumps({"message": self.message, **self.extra}).encode()

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", self.code),
        ]


S3_ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
}
"""The S3 errors a fault may answer: (HTTP status, S3's message). AccessDenied is also
what S3 answers a read of an SSE-KMS object without ``kms:Decrypt``, and a request whose
``ExpectedBucketOwner`` is not the bucket's owner."""


@dataclass
class S3Error(ServiceError):
    """An S3 error answer in S3's own XML shape (a HEAD answer's body is never read)."""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = S3_ERRORS.get(self.code, (400, ""))[0]
        super().__post_init__()

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"<RequestId>{_request_id()}</RequestId></Error>"
        ).encode()

    def headers(self) -> list[tuple[str, str]]:
        return [("Content-Type", "application/xml")]


def _request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


__all__ = ["S3_ERRORS", "STATUS", "S3Error", "ServiceError", "validation"]
