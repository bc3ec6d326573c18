"""The search API's one definition: the committed OpenAPI file, request parsing, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from imgsearch.api_search import error_answer, parse_search_request
from imgsearch.api_shapes import SCHEMAS, error_codes, openapi_document, openapi_json
from imgsearch.limits import LIMITS
from imgsearch.search_errors import RETRYABLE_STATUSES, SearchInputError

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def schema(name: str) -> dict[str, Any]:
    """A component schema, its $refs resolvable (as the e2e tests validate answers)."""
    return {**SCHEMAS[name], "components": {"schemas": SCHEMAS}}


def test_the_committed_openapi_document_is_up_to_date_and_valid() -> None:
    assert OPENAPI.read_text() == openapi_json(), "run `make openapi` and commit docs/openapi.json"
    validate(openapi_document())


def test_the_inline_image_limit_fits_lambdas_payload_after_base64() -> None:
    # 6 MiB = 6,291,456 bytes; less 64 KiB of envelope = 6,225,920; x 3/4 = 4,669,440
    assert LIMITS.api_image_max_bytes == 4_669_440
    encoded = 4 * -(-LIMITS.api_image_max_bytes // 3)  # base64 rounds up to 4-byte groups
    assert encoded + LIMITS.api_event_envelope_bytes <= LIMITS.lambda_sync_payload_max_bytes


@pytest.mark.parametrize(
    "body",
    [
        {"text": "red"},
        {"image": "aGVsbG8=", "k": 3},
        {"image_uri": "s3://b/k.jpg", "filter": {"format": "png"}},
        {"like": "s3://b/k.jpg", "max_distance": 0.5, "group_duplicates": True},
        {"text": "x", "where": ["format!=gif"]},
    ],
)
def test_good_requests_parse_and_match_the_schema(body: dict[str, Any]) -> None:
    assert parse_search_request(body) == body
    jsonschema.validate(body, schema("SearchRequest"))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "JSON object"),
        ({}, "exactly one of text, image, image_uri, like"),
        ({"text": "a", "like": "s3://b/k"}, "got text, like"),
        ({"text": "a", "colour": "red"}, "unknown field(s) colour"),
        ({"text": "a", "k": "5"}, "k: expected integer"),
        ({"text": "a", "k": True}, "k: expected integer"),
        ({"text": "a", "max_distance": "far"}, "max_distance: expected number"),
        ({"text": "a", "where": [1]}, "where: expected array"),
        ({"text": 3}, "text: expected string"),
    ],
)
def test_bad_requests_name_the_field(body: Any, words: str) -> None:
    with pytest.raises(SearchInputError) as caught:
        parse_search_request(body)
    assert words in str(caught.value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema("SearchRequest"))


def test_every_error_answer_matches_the_error_schema_and_says_whether_to_retry() -> None:
    for code, status in error_codes().items():
        answer = error_answer(status, code, "what went wrong")
        jsonschema.validate(answer.body, schema("Error"))
        response = answer.as_lambda_response()
        assert response["statusCode"] == status
        assert json.loads(response["body"])["error"]["retryable"] == (status in RETRYABLE_STATUSES)
        assert ("retry-after" in response["headers"]) == (status in RETRYABLE_STATUSES)
    assert error_codes()["throttled"] == 429
    assert error_codes()["bucket_not_allowed"] == 403
    assert error_codes()["image_too_large"] == 413
