"""The web API's error answers: one map from expected failures to HTTP statuses.

Every expected failure answers ``{"error": "..."}``, one line, never a stack trace.
A search error (:mod:`imgsearch.search_errors`) answers its own ``status``, as the
search API does (400 bad input, 403 another bucket, 404 no such vector or object, 409
empty index, 413/415 the query image, 429/502/503 Bedrock); the tools' errors 400;
403/404/415 refusals (:class:`HttpError`); 503 a service unreachable (which one, at
which endpoint); 502 an AWS call failed. Anything else is a bug and stays Starlette's 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imgsearch.aws_errors import NETWORK_ERRORS
from imgsearch.s3uri import S3UriError
from imgsearch.search_errors import SearchError
from scripts.common.cli import one_line
from scripts.common.errors import ToolError, describe_aws_error


class HttpError(Exception):
    """A refusal with its own status (403 another bucket, 404 no object, 415 not an image)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ToolError, 400),  # the tools' own errors: bad input or a missing thing
    (S3UriError, 400),
    *((kind, 503) for kind in NETWORK_ERRORS),  # no answer: the service is down or unreachable
    (ClientError, 502),
    (BotoCoreError, 502),
)
"""Expected failures and their HTTP status, after the errors that carry their own
(:class:`HttpError`, :class:`SearchError`); anything else is a bug (500, Starlette's)."""


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status)


def unreachable(exc: Exception, services: str, endpoint: str | None) -> str:
    """What the person at the page can act on: which service, where, and the likely cause."""
    if endpoint:
        return f"Can't reach {services} at {endpoint} — is the local cloud running?"
    where_ = getattr(exc, "kwargs", {}).get("endpoint_url") or "its AWS endpoint"
    return f"Can't reach {services} at {where_} — check this machine's network connection"


def describe(exc: Exception, status: int, services: str, endpoint: str | None) -> str:
    """The one-line words for ``exc`` answered with ``status``."""
    if isinstance(exc, SearchError | HttpError):  # its own words, even for a 502/503
        return str(exc)
    if status == 503:
        return unreachable(exc, services, endpoint)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no usable AWS credentials: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then restart imgsearch serve"
        )
    return describe_aws_error(exc) if status == 502 else str(exc)


def status_of(exc: Exception) -> int | None:
    """The HTTP status of an expected failure; None for a bug."""
    if isinstance(exc, HttpError | SearchError):
        return exc.status
    for kind, status in ERROR_STATUSES:
        if isinstance(exc, kind):
            return status
    return None


def error_response(
    exc: Exception, services: str = "AWS", endpoint: str | None = None
) -> JSONResponse | None:
    status = status_of(exc)
    if status is None:
        return None
    return error(describe(exc, status, services, endpoint), status)


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler, services: str, endpoint: str | None) -> Handler:
    """Expected failures become ``{"error": ...}`` answers with a fitting status;
    ``services`` names what the handler calls, for the "can't reach" answer."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            response = error_response(exc, services, endpoint)
            if response is None:
                raise
            return response

    return wrapped


__all__ = [
    "ERROR_STATUSES",
    "Handler",
    "HttpError",
    "describe",
    "error",
    "error_response",
    "guarded",
    "status_of",
    "unreachable",
]
