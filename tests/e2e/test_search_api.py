"""The search API on the local cloud: signed requests through the HTTP API to the search Lambda.

The same queries as the CLI (text, image, image_uri, like, filtered) give the same
results; every refusal is the documented JSON (the function's ``{"error": ...}``, or API
Gateway's ``{"message": ...}`` before the function runs), and every answer validates
against the OpenAPI document's schemas.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.credentials import Credentials

from imgsearch.api_shapes import SCHEMAS
from imgsearch.config import load_config
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from localcloud.cloud import CREDENTIALS, LocalCloud
from localcloud.services.http_api import call
from tests.e2e.cli_harness import colour_jpeg, run_cli, seed
from tests.e2e.conftest import E2E_CONFIG

pytestmark = pytest.mark.e2e
Capsys = pytest.CaptureFixture[str]
CREDS = Credentials(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def api_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    cfg = load_config(
        overrides={**E2E_CONFIG, "search_throttle_rate": 1000, "search_throttle_burst": 1000}
    )
    cloud = LocalCloud.start(cfg, log_file=tmp_path_factory.mktemp("logs") / "lambda.log")
    try:
        cloud.library = seed(cloud)  # type: ignore[attr-defined]
        yield cloud
    finally:
        cloud.close()


def api(
    cloud: LocalCloud,
    method: str,
    path: str,
    body: Any = None,
    *,
    credentials: Credentials | None = CREDS,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    return call(
        cloud.resources.search_api_url,
        method,
        path,
        body,
        credentials=credentials,
        region=cloud.resources.region,
        raw=raw,
    )


def conforms(answer: Any, name: str) -> None:
    """``answer`` matches the OpenAPI document's schema ``name``."""
    jsonschema.validate(answer, {**SCHEMAS[name], "components": {"schemas": SCHEMAS}})


def search(cloud: LocalCloud, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = api(cloud, "POST", "/search", body)
    assert status == 200, answer
    conforms(answer, "SearchResponse")
    assert isinstance(answer, dict)
    return answer


def refused(cloud: LocalCloud, body: Any, status: int, code: str, **kwargs: Any) -> str:
    got, answer = api(cloud, "POST", "/search", body, **kwargs)
    assert got == status, answer
    conforms(answer, "Error")
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["retryable"] is False
    message: str = answer["error"]["message"]
    return message


def cli_json(cloud: LocalCloud, capsys: Capsys, *argv: str) -> dict[str, Any]:
    run = run_cli(cloud, capsys, "--output", "json", "search", *argv)
    assert run.code == 0, run.err
    answer: dict[str, Any] = json.loads(run.out)
    return answer


def ranked(answer: dict[str, Any]) -> list[tuple[str, float]]:
    return [(r["uri"], round(r["distance"], 6)) for r in answer["results"]]


def source(cloud: LocalCloud, key: str) -> str:
    return f"s3://{cloud.resources.source_bucket}/{key}"


# --------------------------------------------------------------------------- same as the CLI


def test_text_search_gives_the_clis_results(api_cloud: LocalCloud, capsys: Capsys) -> None:
    answer = search(api_cloud, {"text": "red", "k": 4})
    assert ranked(answer) == ranked(cli_json(api_cloud, capsys, "--text", "red", "--k", "4"))
    assert answer["results"][0]["uri"].startswith(source(api_cloud, "colours/red"))
    assert answer["query"]["text"] == "red" and answer["query"]["k"] == 4


def test_image_search_gives_the_clis_results(
    api_cloud: LocalCloud, capsys: Capsys, tmp_path: Path
) -> None:
    image = api_cloud.library["photos/rocket.jpg"]  # type: ignore[attr-defined]
    answer = search(api_cloud, {"image": base64.b64encode(image).decode(), "k": 3})
    query = tmp_path / "rocket.jpg"
    query.write_bytes(image)
    assert ranked(answer) == ranked(cli_json(api_cloud, capsys, "--image", str(query), "--k", "3"))
    assert answer["results"][0]["uri"] == source(api_cloud, "photos/rocket.jpg")
    assert answer["query"]["image_sent"] == "inline"


def test_image_uri_search_gives_the_clis_results(api_cloud: LocalCloud, capsys: Capsys) -> None:
    uri = source(api_cloud, "photos/coffee.jpg")
    answer = search(api_cloud, {"image_uri": uri, "k": 3})
    assert ranked(answer) == ranked(cli_json(api_cloud, capsys, "--image", uri, "--k", "3"))
    assert answer["results"][0]["uri"] == uri


def test_like_search_gives_the_clis_results_without_a_model_call(
    api_cloud: LocalCloud, capsys: Capsys
) -> None:
    uri = source(api_cloud, "photos/astronaut.jpg")
    calls = api_cloud.front.requests.get("bedrock:InvokeModel", 0)
    answer = search(api_cloud, {"like": uri, "k": 2})
    assert api_cloud.front.requests.get("bedrock:InvokeModel", 0) == calls
    assert ranked(answer) == ranked(cli_json(api_cloud, capsys, "--like", uri, "--k", "2"))
    assert answer["results"][0]["uri"] == source(api_cloud, "photos/astronaut-small.jpg")
    assert uri not in [r["uri"] for r in answer["results"]]


def test_filtered_search_gives_the_clis_results(api_cloud: LocalCloud, capsys: Capsys) -> None:
    only_png = {"format": {"$eq": "png"}}
    answer = search(api_cloud, {"text": "red", "k": 5, "filter": only_png})
    cli = cli_json(api_cloud, capsys, "--text", "red", "--k", "5", "--filter", json.dumps(only_png))
    assert ranked(answer) == ranked(cli)
    assert [r["uri"] for r in answer["results"]] == [source(api_cloud, "colours/red-wide.png")]


def test_where_words_give_the_clis_results(api_cloud: LocalCloud, capsys: Capsys) -> None:
    words = ["prefix=colours/", "width>=200"]
    answer = search(api_cloud, {"text": "red", "k": 5, "where": words})
    cli = cli_json(api_cloud, capsys, "--text", "red", "--k", "5", *(f"--where={w}" for w in words))
    assert ranked(answer) == ranked(cli)
    assert [r["uri"] for r in answer["results"]] == [source(api_cloud, "colours/red-wide.png")]
    assert answer["query"]["filter"] == cli["query"]["filter"]


def test_cli_search_api_sends_the_query_to_the_endpoint(
    api_cloud: LocalCloud, capsys: Capsys
) -> None:
    before = api_cloud.runtime.search_api.answered.get(200, 0)  # type: ignore[union-attr]
    through_api = cli_json(api_cloud, capsys, "--text", "blue", "--k", "3", "--api")
    assert api_cloud.runtime.search_api.answered.get(200, 0) == before + 1  # type: ignore[union-attr]
    assert ranked(through_api) == ranked(cli_json(api_cloud, capsys, "--text", "blue", "--k", "3"))
    table = run_cli(api_cloud, capsys, "search", "--text", "blue", "--k", "1", "--api")
    assert table.code == 0, table.err
    assert source(api_cloud, "colours/blue.jpg") in table.out
    bad = run_cli(api_cloud, capsys, "search", "--text", "blue", "--k", "0", "--api")
    bad.one_line_error("search API 400 invalid_request", "k 0")


def test_results_carry_short_lived_presigned_urls_of_the_source_image(
    api_cloud: LocalCloud,
) -> None:
    hit = search(api_cloud, {"text": "green", "k": 1})["results"][0]
    assert hit["url_expires_in"] == 300
    assert "X-Amz-Expires=300" in hit["original_url"]
    with urllib.request.urlopen(hit["original_url"], timeout=30) as response:
        assert response.read() == api_cloud.library[hit["key"]]  # type: ignore[attr-defined]


def test_objects_route_answers_one_objects_vector_metadata(api_cloud: LocalCloud) -> None:
    bucket = api_cloud.resources.source_bucket
    status, answer = api(api_cloud, "GET", f"/objects/{bucket}/photos/rocket.jpg")
    assert status == 200, answer
    conforms(answer, "ObjectResponse")
    assert answer["vector_key"] == vector_key(bucket, "photos/rocket.jpg")
    assert answer["metadata"]["source_key"] == "photos/rocket.jpg"
    assert answer["metadata"]["width"] == 160
    status, missing = api(api_cloud, "GET", f"/objects/{bucket}/photos/none.jpg")
    assert status == 404 and missing["error"]["code"] == "not_found"
    conforms(missing, "Error")


def test_health_names_the_index_and_model_and_no_secrets(api_cloud: LocalCloud) -> None:
    status, answer = api(api_cloud, "GET", "/health")
    assert status == 200
    conforms(answer, "HealthResponse")
    assert answer["index"] == api_cloud.resources.index_name
    assert answer["dimension"] == api_cloud.cfg.dimension
    assert answer["max_image_bytes"] == LIMITS.api_image_max_bytes
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in json.dumps(answer)


# --------------------------------------------------------------------------- refusals


def test_unsigned_and_badly_signed_requests_are_refused(api_cloud: LocalCloud) -> None:
    for credentials in (None, Credentials("testing", "wrong-secret"), Credentials("other", "x")):
        status, answer = api(api_cloud, "GET", "/health", credentials=credentials)
        assert (status, answer) == (403, {"message": "Forbidden"})
        conforms(answer, "GatewayError")
    status, answer = api(api_cloud, "GET", "/nowhere")
    assert (status, answer) == (404, {"message": "Not Found"})


def test_an_image_above_the_inline_limit_is_413_with_the_way_out(api_cloud: LocalCloud) -> None:
    too_big = base64.b64encode(b"\xff" * (LIMITS.api_image_max_bytes + 30_000)).decode()
    message = refused(api_cloud, {"image": too_big}, 413, "image_too_large")
    assert "image_uri" in message and str(LIMITS.api_image_max_bytes) in message
    # over Lambda's request payload: API Gateway refuses it before the function runs
    huge = b'{"image": "' + b"A" * LIMITS.lambda_sync_payload_max_bytes + b'"}'
    status, answer = api(api_cloud, "POST", "/search", raw=huge)
    assert (status, answer) == (413, {"message": "Request Entity Too Large"})


def test_a_non_image_upload_is_415(api_cloud: LocalCloud) -> None:
    text = base64.b64encode(b"just some text, not a picture").decode()
    assert "JPEG, PNG, GIF or WebP" in refused(api_cloud, {"image": text}, 415, "unsupported_image")


def test_buckets_other_than_the_source_bucket_are_never_read(api_cloud: LocalCloud) -> None:
    gets = api_cloud.front.requests.get("s3:GetObject", 0)
    for field in ("like", "image_uri"):
        message = refused(
            api_cloud, {field: "s3://someone-else/cat.jpg"}, 403, "bucket_not_allowed"
        )
        assert "someone-else" in message and api_cloud.resources.source_bucket in message
    status, answer = api(api_cloud, "GET", "/objects/someone-else/cat.jpg")
    assert status == 403 and answer["error"]["code"] == "bucket_not_allowed"
    assert api_cloud.front.requests.get("s3:GetObject", 0) == gets


def test_a_malformed_filter_or_body_is_400(api_cloud: LocalCloud) -> None:
    message = refused(
        api_cloud, {"text": "red", "filter": {"colour": "red"}}, 400, "invalid_filter"
    )
    assert "unknown metadata key 'colour'" in message
    message = refused(
        api_cloud, {"text": "red", "filter": {"width": {"$near": 3}}}, 400, "invalid_filter"
    )
    assert "unknown operator '$near'" in message
    refused(api_cloud, None, 400, "invalid_json", raw=b"{not json")
    message = refused(api_cloud, {"text": "red", "where": ["width~3"]}, 400, "invalid_filter")
    assert message.startswith("where 'width~3': expected KEY=VALUE")
    assert "unknown field(s) colour" in refused(
        api_cloud, {"text": "red", "colour": "red"}, 400, "invalid_request"
    )


def test_k_past_the_limit_is_400_with_the_clis_rule(api_cloud: LocalCloud, capsys: Capsys) -> None:
    too_many = LIMITS.query_top_k_max + 1
    message = refused(api_cloud, {"text": "red", "k": too_many}, 400, "invalid_request")
    cli = run_cli(api_cloud, capsys, "search", "--text", "red", "--k", str(too_many))
    line = cli.one_line_error(f"--k {too_many}")
    assert line.removeprefix("imgsearch: error: --") == message


def test_throttling_is_answered_429(api_cloud: LocalCloud) -> None:
    throttle = api_cloud.runtime.search_api.throttle  # type: ignore[union-attr]
    rate, burst = throttle.rate, throttle.burst
    throttle.configure(rate=0.001, burst=1)  # one request, then none for 1,000 s
    try:
        assert api(api_cloud, "GET", "/health")[0] == 200
        status, answer = api(api_cloud, "GET", "/health")
        assert (status, answer) == (429, {"message": "Too Many Requests"})
        conforms(answer, "GatewayError")
    finally:
        throttle.configure(rate, burst)


def test_red_image_query_through_the_api(api_cloud: LocalCloud) -> None:
    answer = search(api_cloud, {"image": base64.b64encode(colour_jpeg((220, 20, 20))).decode()})
    assert answer["results"][0]["uri"].startswith(source(api_cloud, "colours/red"))
