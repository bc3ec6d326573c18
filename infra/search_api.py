"""The search API: an API Gateway HTTP API in front of the search Lambda.

Why an HTTP API and not a Lambda function URL: a function URL has IAM auth but no
throttling (each text or image query is a Bedrock call, so an endpoint without a rate
limit is an open cost), no JWT authorizer (Cognito) and no access logs. The HTTP API
has all three plus route-level auth, at $1 per million requests.

* Auth: IAM (SigV4, ``execute-api:Invoke``) on every route by default; with
  ``search_auth=cognito`` a JWT authorizer on a user pool the stack creates, or the one
  in ``search_user_pool_arn`` (tokens of ``search_user_pool_client_ids``).
* Throttling: the ``$default`` stage's rate and burst (``search_throttle_rate``/``_burst``).
* CORS only for ``search_cors_origins`` (none: no CORS headers, browsers refuse).
* Access logs: one JSON line per request (:data:`ACCESS_LOG_FORMAT`) to CloudWatch Logs.
* The function's role: ``bedrock:InvokeModel`` on the model (or inference profile),
  ``s3vectors:QueryVectors``/``GetVectors`` on the index, ``s3:GetObject`` on the
  source bucket's configured prefixes (``image_uri``, ``like``, and presigning), and
  ``kms:Decrypt`` where keys are configured; nothing else.
"""

from __future__ import annotations

import json
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgsearch.api_shapes import ROUTES
from imgsearch.config import ENV_PREFIX, PipelineConfig
from imgsearch.contract import SEARCH_HANDLER
from infra.bundling import lambda_code
from infra.functions import PipelineFunctions, decrypt_source_images
from infra.storage import source_bucket_owner

ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "caller": "$context.identity.userArn",
    "subject": "$context.authorizer.claims.sub",
}
"""The access log line: who called which route, the answer, and where the time went."""
CORS_HEADERS: tuple[str, ...] = (
    "authorization",
    "content-type",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
)
_METHODS = {"GET": apigw.HttpMethod.GET, "POST": apigw.HttpMethod.POST}


class SearchApi(Construct):
    """The search function, its HTTP API and access logs (see the module docstring)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PipelineConfig,
        functions: PipelineFunctions,
        source_bucket: s3.IBucket,
        index_arn: str,
    ) -> None:
        super().__init__(scope, id)
        cfg = config
        owner = source_bucket_owner(self, cfg)
        environment = cfg.replace(source_bucket_name=source_bucket.bucket_name).to_lambda_env()
        environment[ENV_PREFIX + "SOURCE_BUCKET_OWNER"] = owner
        self.function = functions.function(
            "Search",
            cfg,
            code=lambda_code(cfg.architecture),
            handler=SEARCH_HANDLER,
            environment=environment,
            memory_mb=cfg.search_memory_mb,
            timeout_seconds=cfg.search_timeout_seconds,
            description="Search API: text, image and more-like-this queries over the index",
            statements=[
                *functions.invoke_model_statements(cfg),
                iam.PolicyStatement(
                    sid="QueryIndex",
                    actions=["s3vectors:QueryVectors", "s3vectors:GetVectors"],
                    resources=[index_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadSourceImages",
                    # Query images named by URI (image_uri), and the presigned URLs of
                    # results: a presigned GET carries this role's permission.
                    actions=["s3:GetObject"],
                    resources=[source_bucket.arn_for_objects(f"{p}*") for p in cfg.prefixes],
                    conditions={"StringEquals": {"s3:ResourceAccount": owner}},
                ),
                *_kms_read_statements(cfg),
            ],
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            removal_policy=cdk.RemovalPolicy.DESTROY,
            # as the functions' logs: the configured key, else CloudWatch Logs' own encryption
            encryption_key=kms.Key.from_key_arn(self, "AccessLogsKey", cfg.kms_key_arn)
            if cfg.kms_key_arn
            else None,
        )
        cast(
            logs.CfnLogGroup, self.access_logs.node.default_child
        ).retention_in_days = cfg.log_retention_days
        self.user_pool: cognito.IUserPool | None = None
        self.api = apigw.HttpApi(
            self,
            "Api",
            api_name=f"{cfg.stack_name}-search",
            description="Image search: POST /search, GET /objects/{bucket}/{key}, GET /health",
            create_default_stage=False,
            default_authorizer=self._authorizer(cfg),
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=list(cfg.search_cors_origins),
                allow_methods=[apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.POST],
                allow_headers=list(CORS_HEADERS),
                max_age=cdk.Duration.hours(1),
            )
            if cfg.search_cors_origins
            else None,
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=cfg.search_throttle_rate, burst_limit=cfg.search_throttle_burst
            ),
        )
        cast(
            apigw.CfnStage, self.stage.node.default_child
        ).access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        integration = integrations.HttpLambdaIntegration("Search", self.function)
        for route in ROUTES:
            method, path = route.split(" ", 1)
            self.api.add_routes(path=path, methods=[_METHODS[method]], integration=integration)
        self.url = self.api.api_endpoint
        """The base URL (the ``$default`` stage has no path of its own)."""

    def _authorizer(self, cfg: PipelineConfig) -> apigw.IHttpRouteAuthorizer:
        if cfg.search_auth == "iam":
            return authorizers.HttpIamAuthorizer()
        if cfg.search_user_pool_arn:
            pool = cognito.UserPool.from_user_pool_arn(self, "UserPool", cfg.search_user_pool_arn)
            clients = [
                cognito.UserPoolClient.from_user_pool_client_id(self, f"Client{i}", client_id)
                for i, client_id in enumerate(cfg.search_user_pool_client_ids)
            ]
        else:
            pool = cognito.UserPool(
                self,
                "UserPool",
                self_sign_up_enabled=False,
                sign_in_aliases=cognito.SignInAliases(email=True),
                password_policy=cognito.PasswordPolicy(
                    min_length=12,
                    require_digits=True,
                    require_lowercase=True,
                    require_uppercase=True,
                    require_symbols=True,
                ),
                mfa=cognito.Mfa.REQUIRED,
                mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
                feature_plan=cognito.FeaturePlan.PLUS,
                standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            clients = [
                pool.add_client(
                    "Client",
                    auth_flows=cognito.AuthFlow(user_srp=True),
                    generate_secret=False,
                )
            ]
        self.user_pool = pool
        return authorizers.HttpUserPoolAuthorizer("Cognito", pool, user_pool_clients=clients)


def _kms_read_statements(cfg: PipelineConfig) -> list[iam.PolicyStatement]:
    """Decrypting what the search reads, when customer-managed keys are configured: source
    images through S3 (``image_uri``, presigned GETs) and the vector bucket's vectors."""
    statements = decrypt_source_images(cfg)
    if cfg.kms_key_arn:
        statements.append(
            iam.PolicyStatement(
                sid="DecryptVectors", actions=["kms:Decrypt"], resources=[cfg.kms_key_arn]
            )
        )
    return statements


__all__ = ["ACCESS_LOG_FORMAT", "CORS_HEADERS", "SearchApi"]
