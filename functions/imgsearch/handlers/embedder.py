"""Embedder Lambda: FIFO queue -> Bedrock -> S3 Vectors (placeholder, see issue 3)."""

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise NotImplementedError("embedder handler arrives with the Lambda issue")
