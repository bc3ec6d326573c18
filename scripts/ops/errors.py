"""What the operations library raises when an operation cannot be done as asked.

Every message is the one line the operator reads (what is wrong, what to do); the CLI
prints it with the error's ``exit_code``. Searches raise the core's own errors
(:mod:`imgsearch.search_errors`), which ``run_main`` and the web page report directly;
botocore's errors pass through unchanged: both callers already describe those.
"""

from __future__ import annotations

from scripts.common.errors import ToolError


class OpsError(ToolError):
    """Base of the operations' expected failures (delete, verify...), searches aside."""


class BucketNotFound(OpsError):
    """The S3 bucket an operation lists (the source bucket, a ``--prefix``'s) does not exist."""


__all__ = ["BucketNotFound", "OpsError"]
