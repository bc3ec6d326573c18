"""What the operations library raises when an operation cannot be done as asked.

Every message is the one line the operator reads (what is wrong, what to do); the CLI
prints it with the error's ``exit_code``, the web page answers it as JSON. botocore's
own errors pass through unchanged: both callers already describe those.
"""

from __future__ import annotations

from scripts.common.errors import ToolError


class OpsError(ToolError):
    """Base of the library's expected failures."""


class SearchInputError(OpsError):
    """A query the index cannot take: its k, text, image or filter."""


class FilterError(SearchInputError):
    """A ``--where``/``--filter`` expression S3 Vectors would reject or silently miss."""


class ResourceNotFound(OpsError):
    """A bucket, index or object the operation needs does not exist."""


class IndexMismatch(OpsError):
    """The index holds vectors the configured model cannot produce."""


class EmptyIndex(OpsError):
    """Nothing has been embedded into the index yet."""


class EmbeddingFailed(OpsError):
    """Bedrock would not embed the query (access, model, or a failed call)."""


__all__ = [
    "EmbeddingFailed",
    "EmptyIndex",
    "FilterError",
    "IndexMismatch",
    "OpsError",
    "ResourceNotFound",
    "SearchInputError",
]
