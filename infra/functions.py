"""The router and embedder Lambdas, their least-privilege roles and their triggers.

Each function gets its own role with explicit statements (no managed policies, no
``grant*`` helpers that widen to ``s3:List*``/``GetBucket*``) and its own log group
with the configured retention, so no ``AWSLambdaBasicExecutionRole`` is needed.
With ``tracing`` on they run with X-Ray active tracing for the Powertools Tracer; CDK
then adds ``xray:PutTraceSegments``/``xray:PutTelemetryRecords`` on ``*``: those actions
have no resource-level permissions, AWS offers nothing narrower. Off (the default), no
role carries them.
"""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from imgsearch.config import ENV_PREFIX, PipelineConfig
from imgsearch.contract import EMBEDDER_HANDLER, ROUTER_HANDLER
from infra.bundling import lambda_code
from infra.notifications import notification_filters
from infra.storage import source_bucket_owner

RUNTIME = lambda_.Runtime.PYTHON_3_13
_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


class PipelineFunctions(Construct):
    """Router (S3 events -> FIFO queue) and embedder (FIFO queue -> Bedrock -> S3 Vectors)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: PipelineConfig,
        source_bucket: s3.IBucket,
        queue: sqs.IQueue,
        index_arn: str,
    ) -> None:
        super().__init__(scope, id)
        cfg = config
        key_filters = notification_filters(cfg)  # first: a bad filter fails before bundling
        # The deploy-time names travel in the same environment as everything else.
        environment = cfg.replace(
            queue_url=queue.queue_url, source_bucket_name=source_bucket.bucket_name
        ).to_lambda_env()
        owner = source_bucket_owner(self, cfg)
        # The deploying account unless configured: the embedder always pins the owner.
        environment[ENV_PREFIX + "SOURCE_BUCKET_OWNER"] = owner
        on_owned_bucket = {"StringEquals": {"s3:ResourceAccount": owner}}
        code = lambda_code(cfg.architecture)
        self.policies: dict[str, iam.Policy] = {}
        """Each function's own policy (our statements), by construct id."""

        # S3 invokes the router asynchronously; an event it still fails on after
        # Lambda's retries lands here instead of being dropped.
        self.router_dlq = sqs.Queue(
            self,
            "RouterDeadLetters",
            queue_name=cfg.router_dlq_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(cfg.dlq_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.router = self.function(
            "Router",
            cfg,
            code=code,
            handler=ROUTER_HANDLER,
            environment=environment,
            memory_mb=cfg.router_memory_mb,
            timeout_seconds=cfg.router_timeout_seconds,
            dead_letter_queue=self.router_dlq,
            description="S3 object events -> FIFO queue (S3 cannot notify FIFO queues)",
            statements=[
                iam.PolicyStatement(
                    sid="EnqueueObjectEvents",
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                )
            ],
        )

        self.embedder = self.function(
            "Embedder",
            cfg,
            code=code,
            handler=EMBEDDER_HANDLER,
            environment=environment,
            memory_mb=cfg.embedder_memory_mb,
            timeout_seconds=cfg.embedder_timeout_seconds,
            # 0: none, for accounts whose quota leaves nothing to reserve
            reserved_concurrency=cfg.embedder_reserved_concurrency or None,
            description="FIFO queue -> Bedrock embeddings -> S3 Vectors",
            statements=[
                iam.PolicyStatement(
                    sid="ReadSourceImages",
                    # The embedder reads the current version (GetObject/HeadObject without
                    # VersionId, guarded by IfMatch), so s3:GetObjectVersion is not needed.
                    # HeadObject is covered by s3:GetObject, and so is Bedrock reading an
                    # image by S3 location (it uses our permissions). Only in the pinned
                    # owner's bucket (s3:ResourceAccount), like ExpectedBucketOwner.
                    actions=["s3:GetObject"],
                    resources=[source_bucket.arn_for_objects(f"{p}*") for p in cfg.prefixes],
                    conditions=on_owned_bucket,
                ),
                iam.PolicyStatement(
                    sid="TellMissingFromForbidden",
                    # Without s3:ListBucket, S3 answers HeadObject/GetObject on a missing key
                    # with 403 instead of 404, so the embedder could never confirm that an
                    # object is gone and every delete would end in the DLQ. S3 decides
                    # 404-vs-403 on the bucket-level permission, so no s3:prefix condition.
                    actions=["s3:ListBucket"],
                    resources=[source_bucket.bucket_arn],
                    conditions=on_owned_bucket,
                ),
                *_kms_statements(cfg),
                *self.invoke_model_statements(cfg),
                iam.PolicyStatement(
                    sid="WriteVectors",
                    actions=[
                        "s3vectors:PutVectors",
                        "s3vectors:DeleteVectors",
                        "s3vectors:GetVectors",
                    ],
                    resources=[index_arn],
                ),
            ],
        )
        # Adds the consume permissions the event source mapping needs on this queue.
        self.embedder.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=cfg.batch_size,
                report_batch_item_failures=True,
                # At most the reserved concurrency (config enforces it): with reserved
                # concurrency alone the pollers outrun the function, get throttled, and
                # throttled messages return to the queue and count towards the DLQ's
                # maxReceiveCount. With no reservation this is the only limit.
                max_concurrency=cfg.embedder_concurrency,
            )
        )

        # S3 event notifications cannot target a FIFO queue (S3 sends no
        # MessageGroupId), so they go to the router, which writes to the FIFO queue.
        # Lifecycle expiry is reported as s3:LifecycleExpiration:*, never as
        # ObjectRemoved:*, so it is subscribed too or expired images keep their vectors.
        destination = s3n.LambdaDestination(self.router)
        events = (
            s3.EventType.OBJECT_CREATED,
            s3.EventType.OBJECT_REMOVED,
            s3.EventType.LIFECYCLE_EXPIRATION,
        )
        for key_filter in key_filters:
            for event in events:
                source_bucket.add_event_notification(
                    event,
                    destination,
                    s3.NotificationKeyFilter(
                        prefix=key_filter.prefix or None, suffix=key_filter.suffix
                    ),
                )

    def invoke_model_statements(self, cfg: PipelineConfig) -> list[iam.PolicyStatement]:
        """``bedrock:InvokeModel`` on the configured model, as the Bedrock docs require.

        A foundation model id: that model in this Region. An inference profile id: the
        profile in this Region, and the model in whichever Region the profile routes to
        ("Prerequisites for inference profiles": every destination Region's model must be
        allowed). Those Regions change as AWS adds them, so the model ARN's Region is a
        wildcard, limited to calls made through this profile by ``bedrock:InferenceProfileArn``.
        """
        stack = cdk.Stack.of(self)
        ref = cfg.model_ref
        if not ref.is_profile:
            return [
                iam.PolicyStatement(
                    sid="InvokeEmbeddingModel",
                    actions=["bedrock:InvokeModel"],
                    resources=[
                        stack.format_arn(
                            service="bedrock",
                            account="",
                            resource="foundation-model",
                            resource_name=ref.base_id,
                        )
                    ],
                )
            ]
        profile_arn = stack.format_arn(
            service="bedrock", resource="inference-profile", resource_name=ref.model_id
        )
        return [
            iam.PolicyStatement(
                sid="InvokeInferenceProfile",
                actions=["bedrock:InvokeModel"],
                resources=[profile_arn],
            ),
            iam.PolicyStatement(
                sid="InvokeModelThroughProfile",
                actions=["bedrock:InvokeModel"],
                resources=[model_arn_in_any_region(stack, ref.base_id)],
                conditions={"ArnEquals": {"bedrock:InferenceProfileArn": profile_arn}},
            ),
        ]

    def function(
        self,
        id: str,
        cfg: PipelineConfig,
        *,
        code: lambda_.Code,
        handler: str,
        environment: dict[str, str],
        memory_mb: int,
        timeout_seconds: int,
        description: str,
        statements: list[iam.PolicyStatement],
        reserved_concurrency: int | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        """A function with its own log group, role, and ``statements`` as its own policy.

        Our statements go into an explicit policy; the role's default policy then holds
        only what CDK adds itself (X-Ray, the event source's and the DLQ's permissions),
        so a reviewed cdk-nag finding on one never covers the other.
        """
        log_group = logs.LogGroup(
            self,
            f"{id}Logs",
            removal_policy=cdk.RemovalPolicy.DESTROY,
            # None: CloudWatch Logs' own encryption. A customer-managed key's policy must
            # let logs.<region>.amazonaws.com use it (README, "Encryption").
            encryption_key=kms.Key.from_key_arn(self, f"{id}LogsKey", cfg.kms_key_arn)
            if cfg.kms_key_arn
            else None,
        )
        # RetentionDays is an enum of names; the config holds the number of days.
        cast(
            logs.CfnLogGroup, log_group.node.default_child
        ).retention_in_days = cfg.log_retention_days
        role = iam.Role(
            self,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{cfg.stack_name} {id.lower()} Lambda",
        )
        policy = iam.Policy(
            self,
            f"{id}Policy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
                *statements,
            ],
        )
        fn = lambda_.Function(
            self,
            id,
            runtime=RUNTIME,
            architecture=_ARCHITECTURES[cfg.architecture],
            code=code,
            handler=handler,
            environment=environment,
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=dead_letter_queue,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if cfg.tracing else lambda_.Tracing.DISABLED,
            description=description,
        )
        # like CDK does for the default policy: no invocation before the grants exist
        fn.node.add_dependency(policy)
        self.policies[id] = policy
        return fn


def decrypt_source_images(cfg: PipelineConfig) -> list[iam.PolicyStatement]:
    """``kms:Decrypt`` through S3 on the source objects' customer-managed keys, if any
    (the embedder's and the search function's reads of the images)."""
    if not cfg.source_kms_key_arn:
        return []
    return [
        iam.PolicyStatement(
            sid="DecryptSourceImages",
            actions=["kms:Decrypt"],
            resources=list(cfg.source_kms_key_arn),
            conditions={"StringEquals": {"kms:ViaService": f"s3.{cdk.Aws.REGION}.amazonaws.com"}},
        )
    ]


def _kms_statements(cfg: PipelineConfig) -> list[iam.PolicyStatement]:
    """The embedder's use of customer-managed keys, when configured.

    Source objects under SSE-KMS: S3 calls kms:Decrypt with the caller's permissions on
    GetObject, also when Bedrock reads the image by S3 location (a forward access session),
    so kms:ViaService=s3 covers both ("Using server-side encryption with AWS KMS keys",
    S3 User Guide). The vector bucket's key: S3 Vectors encrypts and decrypts vectors
    with the caller's permissions on PutVectors/GetVectors.
    """
    statements = decrypt_source_images(cfg)
    if cfg.kms_key_arn:
        statements.append(
            iam.PolicyStatement(
                sid="UseVectorBucketKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[cfg.kms_key_arn],
            )
        )
    return statements


def model_arn_in_any_region(stack: cdk.Stack, model_id: str) -> str:
    """A foundation model's ARN in every Region (``arn:...:bedrock:*::foundation-model/id``),
    granted only through an inference profile; ``infra.nag`` names it when acknowledging."""
    return stack.format_arn(
        service="bedrock",
        region="*",
        account="",
        resource="foundation-model",
        resource_name=model_id,
    )
