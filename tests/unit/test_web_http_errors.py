"""The web API answers each expected failure with one ``{"error": ...}`` line and a status."""

from __future__ import annotations

import json

import pytest

from imgsearch import search_errors as core
from scripts.common.errors import CliError
from scripts.ops.errors import BucketNotFound
from scripts.web.http_errors import HttpError, error_response


def _answer(exc: Exception) -> tuple[int, str]:
    response = error_response(exc, "S3 Vectors / Bedrock", "http://127.0.0.1:4566")
    assert response is not None
    return response.status_code, json.loads(bytes(response.body))["error"]


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (core.SearchInputError("k 0: use 1..100"), 400),
        (core.FilterError("filter: not valid JSON"), 400),
        (core.BucketNotAllowed("uri 's3://other/a.jpg': not the source bucket"), 403),
        (core.ResourceNotFound("s3://b/a.jpg: no stored vector"), 404),
        (core.EmptyIndex("index 'i' holds no vectors yet"), 409),
        (core.QueryImageTooLarge("the image is 9 MB; the limit is 5 MB"), 413),
        (core.UnsupportedQueryImage("a.txt: not an image"), 415),
        (core.EmbeddingThrottled("Bedrock kept throttling: try again"), 429),
        (core.IndexMismatch("index 'i' holds 1024-d vectors; the model makes 3072"), 500),
        (core.EmbeddingFailed("Bedrock refused: AccessDenied\n  on the model"), 502),
        (core.EmbeddingUnavailable("Bedrock did not answer: try again later"), 503),
    ],
)
def test_a_search_error_answers_its_own_status_in_its_own_words(
    exc: core.SearchError, status: int
) -> None:
    # The same status the search API gives; never "can't reach", never the class name.
    assert _answer(exc) == (status, " ".join(str(exc).split()))


def test_the_tools_errors_are_bad_input_and_refusals_keep_their_status() -> None:
    assert _answer(CliError("--k: expected a number")) == (400, "--k: expected a number")
    assert _answer(BucketNotFound("bucket 'b' does not exist"))[0] == 400
    assert _answer(HttpError(404, "no such object")) == (404, "no such object")
    # A 503 the search API itself answered keeps its words (not "Can't reach S3 Vectors").
    busy = "search API: service_unavailable: Bedrock did not answer; retry later"
    assert _answer(HttpError(503, busy)) == (503, busy)


def test_a_bug_is_not_an_expected_failure() -> None:
    assert error_response(ValueError("oops")) is None
