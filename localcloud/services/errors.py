"""Service errors as the local cloud sends them: the AWS rest-json error shape.

Both Bedrock Runtime and S3 Vectors are rest-json services: an error is an HTTP status,
an ``x-amzn-ErrorType`` header naming the exception, and a JSON body ``{"message": ...}``.
botocore turns that into ``ClientError`` with ``Error.Code`` = the exception name, exactly
as it does against AWS, so the production code's error handling is exercised for real.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


__all__ = ["STATUS", "ServiceError", "validation"]
