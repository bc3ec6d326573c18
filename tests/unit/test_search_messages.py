"""The search library's words for a failed query embedding: a person's, never a CLI flag
(the web page and the search API show them as they are)."""

from __future__ import annotations

import pytest

from imgsearch.bedrock_errors import ACCESS_DENIED, MODEL_NOT_FOUND, THROTTLED
from imgsearch.embeddings import EmbeddingError
from imgsearch.search import embedding_failure

MODEL = "amazon.nova-2-multimodal-embeddings-v1:0"


def test_a_throttled_query_says_what_happened_in_words() -> None:
    failure = embedding_failure(
        EmbeddingError(
            THROTTLED,
            "ThrottlingException: Too many requests (gave up after 6 attempts)",
            transient=True,
        ),
        MODEL,
    )
    text = str(failure)
    assert failure.status == 429
    assert text.startswith(f"Bedrock is busy: more requests for {MODEL} than")
    assert "try again in a moment" in text
    assert "ThrottlingException" not in text and "throttled:" not in text


@pytest.mark.parametrize("reason", [ACCESS_DENIED, MODEL_NOT_FOUND, THROTTLED])
def test_no_message_names_a_command_line_option(reason: str) -> None:
    text = str(embedding_failure(EmbeddingError(reason, "detail", transient=False), MODEL))
    assert "--" not in text
