"""Router Lambda: S3 event notifications -> FIFO queue (placeholder, see issue 3)."""

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise NotImplementedError("router handler arrives with the Lambda issue")
