"""`make preflight`: the checks against botocore's Stubber; the command against a fake endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.stub import Stubber

from imgsearch.config import PipelineConfig
from scripts.preflight.checks import Finding, check_lambda_concurrency, check_model
from scripts.preflight.cli import main

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_lambda import LambdaClient

REGION = "eu-west-1"
NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"
MARENGO = "twelvelabs.marengo-embed-3-0-v1:0"
MARENGO_EU = f"eu.{MARENGO}"
ACCOUNT = "123456789012"


def _stubbed(service: str) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


@pytest.fixture
def lam() -> Iterator[tuple[LambdaClient, Stubber]]:
    yield from _stubbed("lambda")


@pytest.fixture
def bedrock() -> Iterator[tuple[BedrockClient, Stubber]]:
    yield from _stubbed("bedrock")


def _settings(quota: int, unreserved: int) -> dict[str, Any]:
    return {
        "AccountLimit": {
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": unreserved,
        }
    }


# --------------------------------------------------------------------------- Lambda


def test_a_new_accounts_quota_of_10_cannot_reserve_5(lam: tuple[LambdaClient, Stubber]) -> None:
    client, stub = lam
    stub.add_response("get_account_settings", _settings(10, 10))
    finding = check_lambda_concurrency(client, PipelineConfig())
    assert finding.status == "fail"
    assert "reserving 5 would leave 5 unreserved, below Lambda's minimum of 10" in finding.detail
    assert finding.fix.startswith("-c reserved_concurrency=0")
    assert "embedder_concurrency=" not in finding.fix  # nothing is left to reserve at all
    assert finding.line().startswith("lambda concurrency: will fail: ")
    assert "; fix: -c reserved_concurrency=0" in finding.line()


def test_a_smaller_reservation_is_offered_when_it_fits(lam: tuple[LambdaClient, Stubber]) -> None:
    client, stub = lam
    stub.add_response("get_account_settings", _settings(14, 14))
    finding = check_lambda_concurrency(client, PipelineConfig())
    assert finding.status == "fail"
    assert "or -c embedder_concurrency=4," in finding.fix
    # an explicit reservation has to follow it down too
    stub.add_response("get_account_settings", _settings(20, 20))
    cfg = PipelineConfig(embedder_concurrency=5, reserved_concurrency=16)
    finding = check_lambda_concurrency(client, cfg)
    assert "-c embedder_concurrency=10 -c reserved_concurrency=10" in finding.fix


def test_a_large_quota_is_ok(lam: tuple[LambdaClient, Stubber]) -> None:
    client, stub = lam
    stub.add_response("get_account_settings", _settings(1000, 1000))
    finding = check_lambda_concurrency(client, PipelineConfig())
    assert finding == Finding(
        "lambda concurrency",
        "ok",
        "reserving 5 leaves 995 unreserved (account quota 1000, 1000 unreserved)",
    )


def test_an_update_counts_the_deployed_embedders_reservation_as_free(
    lam: tuple[LambdaClient, Stubber],
) -> None:
    client, stub = lam
    # quota 15, of which the deployed embedder holds 5: redeploying with 5 still fits
    stub.add_response("get_account_settings", _settings(15, 10))
    stub.add_response(
        "get_function_concurrency",
        {"ReservedConcurrentExecutions": 5},
        {"FunctionName": "ImageSearchPipeline-Embedder"},
    )
    finding = check_lambda_concurrency(client, PipelineConfig(), "ImageSearchPipeline-Embedder")
    assert finding.status == "ok", finding
    assert "counting the 5 the deployed embedder holds" in finding.detail


def test_no_reservation_needs_no_quota(lam: tuple[LambdaClient, Stubber]) -> None:
    client, _ = lam  # no call may be made
    finding = check_lambda_concurrency(client, PipelineConfig(reserved_concurrency=0))
    assert finding.status == "ok"
    assert "at most 5 embedders" in finding.detail


def test_a_refused_question_is_unknown_not_a_failure(lam: tuple[LambdaClient, Stubber]) -> None:
    client, stub = lam
    stub.add_client_error("get_account_settings", "AccessDeniedException", "not allowed", 403)
    finding = check_lambda_concurrency(client, PipelineConfig())
    assert finding.status == "unknown"
    assert "AccessDeniedException" in finding.detail
    assert finding.line().startswith("lambda concurrency: cannot check: ")


# --------------------------------------------------------------------------- Bedrock


def _model(model_id: str, kinds: list[str]) -> dict[str, Any]:
    return {
        "modelDetails": {
            "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
            "modelId": model_id,
            "inferenceTypesSupported": kinds,
        }
    }


def _profile(profile_id: str, regions: list[str]) -> dict[str, Any]:
    base = profile_id.partition(".")[2]
    return {
        "inferenceProfileName": profile_id,
        "inferenceProfileArn": (
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{profile_id}"
        ),
        "inferenceProfileId": profile_id,
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{base}"} for r in regions],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


AVAILABLE: dict[str, Any] = {
    "modelId": NOVA,
    "agreementAvailability": {"status": "AVAILABLE"},
    "authorizationStatus": "AUTHORIZED",
    "entitlementAvailability": "AVAILABLE",
    "regionAvailability": "AVAILABLE",
}


def test_an_on_demand_model_with_access_is_ok(bedrock: tuple[BedrockClient, Stubber]) -> None:
    client, stub = bedrock
    stub.add_response(
        "get_foundation_model", _model(NOVA, ["ON_DEMAND"]), {"modelIdentifier": NOVA}
    )
    stub.add_response("get_foundation_model_availability", AVAILABLE, {"modelId": NOVA})
    offered, access = check_model(client, PipelineConfig(), REGION)
    assert offered.line() == f"model in region: ok: {REGION} offers {NOVA} on demand"
    assert access.status == "ok"


def test_a_model_offered_only_through_a_profile_names_the_profile_to_use(
    bedrock: tuple[BedrockClient, Stubber],
) -> None:
    client, stub = bedrock
    cfg = PipelineConfig(model_id=MARENGO, dimension=512)
    stub.add_response(
        "get_foundation_model", _model(MARENGO, ["INFERENCE_PROFILE"]), {"modelIdentifier": MARENGO}
    )
    stub.add_response(
        "list_inference_profiles",
        {
            "inferenceProfileSummaries": [_profile(f"global.{MARENGO}", [REGION])],
            "nextToken": "page2",
        },
        {"typeEquals": "SYSTEM_DEFINED"},
    )
    stub.add_response(
        "list_inference_profiles",
        {"inferenceProfileSummaries": [_profile(MARENGO_EU, [REGION, "eu-central-1"])]},
        {"typeEquals": "SYSTEM_DEFINED", "nextToken": "page2"},
    )
    stub.add_response(
        "get_foundation_model_availability", {**AVAILABLE, "modelId": MARENGO}, {"modelId": MARENGO}
    )
    offered, access = check_model(client, cfg, REGION)
    assert offered.status == "fail"
    assert "only as INFERENCE_PROFILE, not on demand" in offered.detail
    # geographic before global
    assert offered.fix.startswith(f"-c model_id={MARENGO_EU} ")
    assert f"also global.{MARENGO}" in offered.fix
    assert access.status == "ok"


def test_a_model_not_offered_at_all_says_so(bedrock: tuple[BedrockClient, Stubber]) -> None:
    client, stub = bedrock
    stub.add_client_error(
        "get_foundation_model", "ValidationException", "The provided model identifier is invalid."
    )
    stub.add_response("list_inference_profiles", {"inferenceProfileSummaries": []})
    stub.add_response(
        "get_foundation_model_availability",
        {**AVAILABLE, "regionAvailability": "NOT_AVAILABLE"},
    )
    offered, access = check_model(client, PipelineConfig(), REGION)
    assert offered.status == "fail"
    assert "no inference profile for it" in offered.detail
    assert "-c region=" in offered.fix
    assert access.status == "fail"
    assert f"not available in {REGION}" in access.detail


def test_an_inference_profile_reports_where_it_routes(
    bedrock: tuple[BedrockClient, Stubber],
) -> None:
    client, stub = bedrock
    cfg = PipelineConfig(model_id=MARENGO_EU, dimension=512)
    stub.add_response(
        "get_inference_profile",
        _profile(MARENGO_EU, ["eu-west-1", "eu-central-1", "eu-west-1"]),
        {"inferenceProfileIdentifier": MARENGO_EU},
    )
    # a profile's source Region need not host the model itself: not a failure
    stub.add_response(
        "get_foundation_model_availability",
        {**AVAILABLE, "modelId": MARENGO, "regionAvailability": "NOT_AVAILABLE"},
        {"modelId": MARENGO},
    )
    offered, access = check_model(client, cfg, REGION)
    assert offered.line() == (
        f"model in region: ok: inference profile {MARENGO_EU} routes to eu-central-1, eu-west-1"
    )
    assert access.status == "ok"


def test_an_inference_profile_this_region_lacks(bedrock: tuple[BedrockClient, Stubber]) -> None:
    client, stub = bedrock
    cfg = PipelineConfig(model_id=f"us.{MARENGO}", dimension=512)
    stub.add_client_error(
        "get_inference_profile", "ResourceNotFoundException", "profile not found", 404
    )
    stub.add_response(
        "list_inference_profiles",
        {"inferenceProfileSummaries": [_profile(MARENGO_EU, [REGION])]},
    )
    stub.add_response("get_foundation_model_availability", {**AVAILABLE, "modelId": MARENGO})
    offered, _ = check_model(client, cfg, REGION)
    assert offered.status == "fail"
    assert f"{REGION} has no inference profile us.{MARENGO}" in offered.detail
    assert offered.fix.startswith(f"-c model_id={MARENGO_EU} ")


@pytest.mark.parametrize(
    ("availability", "expected"),
    [
        ({"entitlementAvailability": "NOT_AVAILABLE"}, "not entitled"),
        (
            {"agreementAvailability": {"status": "PENDING", "errorMessage": "wait"}},
            "Marketplace agreement for amazon.nova-2-multimodal-embeddings-v1:0 is PENDING (wait)",
        ),
    ],
)
def test_model_access_not_granted(
    bedrock: tuple[BedrockClient, Stubber], availability: dict[str, Any], expected: str
) -> None:
    client, stub = bedrock
    stub.add_response("get_foundation_model", _model(NOVA, ["ON_DEMAND"]))
    stub.add_response("get_foundation_model_availability", {**AVAILABLE, **availability})
    _, access = check_model(client, PipelineConfig(), REGION)
    assert access.status == "fail"
    assert expected in access.detail
    assert "Model access" in access.fix


# --------------------------------------------------------------------------- the command


class _FakeAws(BaseHTTPRequestHandler):
    """Lambda's and Bedrock's REST-JSON answers for one account (the network edge)."""

    answers: dict[str, Any] = {}

    def do_GET(self) -> None:
        path = unquote(self.path.split("?")[0]).rstrip("/")
        body = self.answers.get(path)
        if body is None:
            self._send(404, {"message": f"no {path}"}, "ResourceNotFoundException")
        else:
            self._send(200, body)

    def _send(self, status: int, body: Any, error: str = "") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    answers: dict[str, Any] = {}
    handler = type("Handler", (_FakeAws,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answers["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield answers
    server.shutdown()
    server.server_close()


def test_the_command_prints_one_line_per_check_and_fails_on_a_small_quota(
    endpoint: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint["/2016-08-19/account-settings"] = _settings(10, 10)
    endpoint[f"/foundation-models/{NOVA}"] = _model(NOVA, ["ON_DEMAND"])
    endpoint[f"/foundation-model-availability/{NOVA}"] = AVAILABLE
    base = ["--region", REGION, "--endpoint-url", endpoint["url"], "--no-stack"]
    assert main(base) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("preflight for ImageSearchPipeline in eu-west-1")
    assert lines[1].startswith("lambda concurrency: will fail: reserving 5 would leave 5")
    assert "fix: -c reserved_concurrency=0" in lines[1]
    assert lines[2] == f"model in region: ok: {REGION} offers {NOVA} on demand"
    assert lines[3].startswith("model access: ok")
    assert len(lines) == 4
    # the fix it names makes the same check pass
    assert main([*base, "-c", "reserved_concurrency=0"]) == 0
    assert "lambda concurrency: ok: no reserved concurrency" in capsys.readouterr().out
