"""The operator tools' error base and exit codes, shared by every tool under scripts/.

Each layer raises its own errors (``scripts.ops.errors.OpsError``, the backfill's
``BackfillError``, :class:`CliError` for bad command-line input); they all derive from
:class:`ToolError`, so ``scripts.common.cli.run_main`` turns any of them into one stderr
line and its ``exit_code`` without knowing which tool raised it. The core's errors
(``imgsearch.search_errors.SearchError``, ``S3UriError``) are not copied here:
``run_main`` reports them itself (exit 2), and the web page answers their own status.
"""

from __future__ import annotations

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
