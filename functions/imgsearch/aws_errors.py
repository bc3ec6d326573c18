"""One home for reading AWS errors and for retry pacing.

Every package asks the same questions of a failed call (which code? which HTTP status?
is it a not-found? a throttle?) and backs off the same way (full jitter, as AWS's
architecture blog recommends). Pure: botocore's exception types only, no clients.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

S3_NOT_FOUND_CODES: frozenset[str] = frozenset({"NoSuchKey", "NotFound", "404"})
"""``GetObject`` says ``NoSuchKey``; ``HeadObject`` has no body, so botocore reports ``404``
(or ``NotFound``)."""

THROTTLING_CODES: frozenset[str] = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "SlowDown",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
"""Codes with which AWS services say "too many requests, slow down"."""

NETWORK_ERRORS: tuple[type[Exception], ...] = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
"""botocore errors of a call that never got an answer: worth retrying like a throttle."""


def error_code(exc: ClientError) -> str:
    """The service's error code, or ``""`` when the response carries none."""
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "") or "")


def http_status(exc: ClientError) -> int:
    """The HTTP status of the failed call (0 when unknown)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def client_error_text(exc: ClientError) -> str:
    """``Operation: Code message``: one line for logs and outcome details."""
    return f"{exc.operation_name}: {error_code(exc) or 'Unknown'} {error_message(exc)}".strip()


def is_not_found_code(code: str, status: int = 0) -> bool:
    """The S3 not-found rule, for callers that hold only a code and a status."""
    return code in S3_NOT_FOUND_CODES or status == 404


def is_not_found(exc: BaseException) -> bool:
    """True if ``exc`` is S3 saying the bucket/object/key does not exist."""
    return isinstance(exc, ClientError) and is_not_found_code(error_code(exc), http_status(exc))


def is_missing_bucket(exc: BaseException) -> bool:
    """S3 says the bucket does not exist (a 404 as well, but another fix: name or region)."""
    return isinstance(exc, ClientError) and error_code(exc) == "NoSuchBucket"


def is_missing_object(exc: BaseException) -> bool:
    """S3 says the object is not there, but the bucket is."""
    return is_not_found(exc) and not is_missing_bucket(exc)


def is_throttle(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    return error_code(exc) in THROTTLING_CODES or http_status(exc) == 429


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt))."""
    return rng() * min(cap, math.ldexp(base, attempt))


__all__ = [
    "NETWORK_ERRORS",
    "S3_NOT_FOUND_CODES",
    "THROTTLING_CODES",
    "backoff_delay",
    "client_error_text",
    "error_code",
    "error_message",
    "http_status",
    "is_missing_bucket",
    "is_missing_object",
    "is_not_found",
    "is_not_found_code",
    "is_throttle",
]
