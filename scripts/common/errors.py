"""The operator tools' error base and exit codes, shared by every tool under scripts/.

Each layer raises its own errors (``scripts.ops.errors.OpsError``, the backfill's
``BackfillError``, :class:`CliError` for bad command-line input); they all derive from
:class:`ToolError`, so ``scripts.common.cli.run_main`` turns any of them into one stderr
line and its ``exit_code`` without knowing which tool raised it. The core's errors
(``imgsearch.search_errors.SearchError``, ``S3UriError``) are not copied here:
``run_main`` reports them itself (exit 2), and the web page answers their own status.

:func:`describe_aws_error` words an AWS SDK failure as that one line, for the CLIs, the
web page and the operations alike; it lives here, not in ``scripts.common.cli``, so a
library (``scripts.ops``) can use it without importing the argument parser.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from imgsearch.aws_errors import error_code, error_message

EXIT_OK = 0
EXIT_INCOMPLETE = 1
"""The run finished but not everything went through (e.g. entries SQS rejected)."""
EXIT_ERROR = 2
"""Bad input, configuration or environment; nothing more was done."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C / SIGTERM after saving progress (128 + SIGINT, as shells report)."""
EXIT_BROKEN_PIPE = 141
"""stdout's reader closed the pipe (128 + SIGPIPE, as shells report for `cmd | head`)."""


class ToolError(Exception):
    """An expected failure: ``str(self)`` is the one line the operator sees."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class CliError(ToolError):
    """Bad command-line input or environment, found before any work was done."""


class DeploymentError(ToolError):
    """The deployment's stack or one of its outputs cannot be found or read."""


CREDENTIAL_ERRORS: tuple[type[BaseException], ...] = (
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    NoRegionError,
)
"""Errors no fallback can fix: they must reach the operator, never be swallowed."""


def describe_aws_error(exc: BaseException) -> str:
    """One line saying what failed and what to do about it."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or pass --profile"
        )
    if isinstance(exc, PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}); set both the key id and the secret"
    if isinstance(exc, ProfileNotFound):
        return f"{exc}; check --profile / AWS_PROFILE"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(exc, EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url", "the endpoint")
        return f"cannot reach {where}: check the network, --region and --endpoint-url"
    if isinstance(exc, ClientError):
        op = getattr(exc, "operation_name", "") or "AWS call"
        message = error_message(exc)
        code = error_code(exc)
        hint = ""
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            hint = "; check the IAM permissions of these credentials"
        elif code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"):
            hint = "; refresh the credentials"
        return f"{op} failed: {code}: {message}{hint}"
    if isinstance(exc, BotoCoreError):
        return f"AWS SDK error: {exc}"
    return f"{type(exc).__name__}: {exc}"
