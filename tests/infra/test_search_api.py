"""The search API in the template: auth, throttling, CORS, exact IAM, access logs, outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgsearch.api_shapes import ROUTES
from imgsearch.contract import METRICS, OUTPUTS
from infra.search_api import ACCESS_LOG_FORMAT
from tests.infra.conftest import Synth, SynthFn, getatt

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"


@pytest.fixture(scope="module")
def default(synth: SynthFn) -> Synth:
    return synth()


def _search_function_id(s: Synth) -> str:
    assert s.stack.search_api is not None
    return s.logical_id(s.stack.search_api.function)


def test_every_route_needs_iam_auth_by_default(default: Synth) -> None:
    routes = default.resources("AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == set(ROUTES)
    assert {r["Properties"]["AuthorizationType"] for r in routes.values()} == {"AWS_IAM"}
    assert not default.resources("AWS::ApiGatewayV2::Authorizer")
    (api,) = default.resources("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api["Properties"]  # no origins configured: no CORS


def test_the_stage_throttles_with_the_configured_rate_and_burst(synth: SynthFn) -> None:
    cases = ((synth(), 5, 10), (synth(search_throttle_rate=40, search_throttle_burst=80), 40, 80))
    for s, rate, burst in cases:
        (stage,) = s.resources("AWS::ApiGatewayV2::Stage").values()
        assert stage["Properties"]["StageName"] == "$default"
        assert stage["Properties"]["AutoDeploy"] is True
        assert stage["Properties"]["DefaultRouteSettings"] == {
            "ThrottlingRateLimit": rate,
            "ThrottlingBurstLimit": burst,
        }


def test_access_logs_go_to_their_log_group_as_one_json_line(default: Synth) -> None:
    (stage,) = default.resources("AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"]["Fn::GetAtt"][1] == "Arn"
    group = default.raw["Resources"][settings["DestinationArn"]["Fn::GetAtt"][0]]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == 30
    line = json.loads(settings["Format"])
    assert line == ACCESS_LOG_FORMAT
    for field in ("requestId", "routeKey", "status", "responseLatency", "caller"):
        assert line[field].startswith("$context."), field


def test_cors_allows_only_the_configured_origins(synth: SynthFn) -> None:
    s = synth(search_cors_origins="https://shop.example.com,http://localhost:3000")
    (api,) = s.resources("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://shop.example.com", "http://localhost:3000"]
    assert sorted(cors["AllowMethods"]) == ["GET", "POST"]
    assert "authorization" in cors["AllowHeaders"] and "x-amz-date" in cors["AllowHeaders"]


def test_search_role_grants_exactly_the_listed_actions(default: Synth) -> None:
    pipeline = default.stack.pipeline
    fn = _search_function_id(default)
    source = default.logical_id(pipeline.buckets.source_bucket)
    index = str(default.stack.resolve(pipeline.vectors.index.logical_id))
    bedrock = json.dumps(
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:",
                           {"Ref": "AWS::Region"}, f"::foundation-model/{NOVA}"]]},
        sort_keys=True,
    )  # fmt: skip
    objects = json.dumps(
        {"Fn::Join": ["", [{"Fn::GetAtt": [source, "Arn"]}, "/*"]]}, sort_keys=True
    )
    log_group = default.raw["Resources"][fn]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert default.granted(fn) == {
        ("bedrock:InvokeModel", bedrock),
        ("s3vectors:QueryVectors", getatt(index, "IndexArn")),
        ("s3vectors:GetVectors", getatt(index, "IndexArn")),
        ("s3:GetObject", objects),
        ("logs:CreateLogStream", getatt(log_group)),
        ("logs:PutLogEvents", getatt(log_group)),
    }


def test_search_reads_only_the_configured_prefixes_of_an_imported_bucket(synth: SynthFn) -> None:
    s = synth(source_bucket_name="my-photos", prefixes="cats/,dogs/")
    reads = {r for a, r in s.granted(_search_function_id(s)) if a == "s3:GetObject"}
    assert {json.loads(r)["Fn::Join"][1][-1] for r in reads} == {
        ":s3:::my-photos/cats/*",
        ":s3:::my-photos/dogs/*",
    }


def test_the_function_runs_the_search_handler_with_the_deployed_config(default: Synth) -> None:
    props = default.raw["Resources"][_search_function_id(default)]["Properties"]
    assert props["Handler"] == "imgsearch.handlers.search.lambda_handler"
    assert props["Timeout"] == 15 and props["MemorySize"] == 512
    env = props["Environment"]["Variables"]
    assert env["IMGSEARCH_SOURCE_BUCKET_NAME"] == {"Ref": default.logical_id(
        default.stack.pipeline.buckets.source_bucket)}  # fmt: skip
    assert env["IMGSEARCH_INDEX_NAME"] == "images"
    integration = next(iter(default.resources("AWS::ApiGatewayV2::Integration").values()))
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_outputs_name_the_api_url_and_function(default: Synth) -> None:
    outputs = default.raw["Outputs"]
    api = default.logical_id(default.stack.search_api.api)  # type: ignore[union-attr]
    assert outputs[OUTPUTS.search_api_url]["Value"] == {"Fn::GetAtt": [api, "ApiEndpoint"]}
    assert outputs[OUTPUTS.search_function_name]["Value"] == {"Ref": _search_function_id(default)}


def test_search_api_false_leaves_the_endpoint_out(synth: SynthFn) -> None:
    s = synth(search_api=False)
    assert s.stack.search_api is None
    assert not s.resources("AWS::ApiGatewayV2::Api")
    assert OUTPUTS.search_api_url not in s.raw["Outputs"]
    assert OUTPUTS.search_function_name not in s.raw["Outputs"]
    assert len(s.resources("AWS::Lambda::Function")) == 3  # router, embedder, CDK's handler
    assert s.nag_report()["violations"] == []


def _authorizer(s: Synth) -> dict[str, Any]:
    (authorizer,) = s.resources("AWS::ApiGatewayV2::Authorizer").values()
    props: dict[str, Any] = authorizer["Properties"]
    return props


def test_cognito_auth_with_a_created_user_pool(synth: SynthFn) -> None:
    s = synth(search_auth="cognito")
    routes = s.resources("AWS::ApiGatewayV2::Route").values()
    assert {r["Properties"]["AuthorizationType"] for r in routes} == {"JWT"}
    props = _authorizer(s)
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    (pool,) = s.resources("AWS::Cognito::UserPool").values()
    (client_id,) = s.resources("AWS::Cognito::UserPoolClient")
    assert props["JwtConfiguration"]["Audience"] == [{"Ref": client_id}]
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Properties"]["MfaConfiguration"] == "ON"
    assert s.nag_report()["violations"] == []


def test_cognito_auth_with_an_imported_user_pool(synth: SynthFn) -> None:
    arn = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123"
    s = synth(
        search_auth="cognito", search_user_pool_arn=arn, search_user_pool_client_ids="abc,def"
    )
    assert not s.resources("AWS::Cognito::UserPool")
    props = _authorizer(s)
    assert props["JwtConfiguration"]["Audience"] == ["abc", "def"]
    issuer = json.dumps(props["JwtConfiguration"]["Issuer"])
    assert "eu-west-1_AbCdEf123" in issuer
    assert s.nag_report()["violations"] == []


def test_dashboard_and_5xx_alarm_watch_the_api(default: Synth) -> None:
    (dashboard,) = default.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    # HTTP APIs' metric names (AWS/ApiGateway by ApiId): Count, 4xx, 5xx, Latency
    metrics = ('\\"Count\\"', '\\"4xx\\"', '\\"5xx\\"', '\\"Latency\\"')
    for needle in ("AWS/ApiGateway", *metrics, "p99", METRICS.search_model_calls):
        assert needle in body, needle
    alarms = [
        a["Properties"] for a in default.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "ImageSearchPipeline-search-5xx"
    ]  # fmt: skip
    (alarm,) = alarms
    assert alarm["Threshold"] == 5 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    expressions = " ".join(m.get("Expression", "") for m in alarm["Metrics"])
    assert "100 * FILL(errors, 0) / requests" in expressions
