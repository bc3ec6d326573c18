"""Creating what the stack creates, on the local cloud, from the same config and facts.

:func:`provision` makes the source and inventory buckets (with the S3 Inventory of
:func:`imgsearch.blueprint.inventory_configuration` and the notification filters of
:func:`infra.notifications.notification_filters` pointing at the router), the FIFO queue
and FIFO DLQ with the redrive policy, the router's DLQ, the vector bucket and index
(dimension, metric, non-filterable keys), and a CloudFormation stack named
``cfg.stack_name`` whose outputs (:class:`imgsearch.blueprint.StackOutputs`) name them
all, so the scripts find the local resources exactly as they find deployed ones.
"""

from __future__ import annotations

import json
import socket
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from imgsearch.blueprint import (
    FIFO_QUEUE_ATTRIBUTES,
    NOTIFICATION_EVENTS,
    VECTOR_DATA_TYPE,
    VECTOR_ENCRYPTION,
    StackOutputs,
    deployed_config_json,
    inventory_configuration,
)
from imgsearch.config import PipelineConfig
from imgsearch.vectors import NON_FILTERABLE_KEYS
from infra.notifications import notification_filters
from localcloud.services.front import ACCOUNT_ID

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType, EventType
    from mypy_boto3_s3.type_defs import FilterRuleTypeDef, LambdaFunctionConfigurationTypeDef
    from mypy_boto3_s3vectors import S3VectorsClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class ProvisionedStack:
    """Names and addresses of everything the local cloud created."""

    region: str
    account_id: str
    endpoint: str
    sqs_endpoint: str
    stack_name: str
    source_bucket: str
    inventory_bucket: str
    vector_bucket: str
    index_name: str
    index_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    router_dlq_url: str
    router_function: str
    embedder_function: str
    deployed_config: str
    """The ``DeployedConfig`` output, from the config the local cloud was built with."""
    search_api_url: str = ""
    search_function: str = ""
    """The search API's URL and function (empty with ``search_api=false``)."""

    @property
    def search_api_port(self) -> int:
        return int(self.search_api_url.rsplit(":", 1)[-1]) if self.search_api_url else 0

    def outputs(self) -> StackOutputs:
        """The stack outputs the scripts read, as the deployed stack publishes them."""
        return StackOutputs(
            source_bucket_name=self.source_bucket,
            inventory_bucket_name=self.inventory_bucket,
            queue_url=self.queue_url,
            dlq_url=self.dlq_url,
            router_dlq_url=self.router_dlq_url,
            vector_bucket_name=self.vector_bucket,
            index_name=self.index_name,
            index_arn=self.index_arn,
            dashboard_url=f"{self.endpoint}/_localcloud/status",
            embedder_function_name=self.embedder_function,
            router_function_name=self.router_function,
            deployed_config=self.deployed_config,
            search_api_url=self.search_api_url,
            search_function_name=self.search_function,
        )


def queue_name(queue_url: str) -> str:
    """The queue's name, the last part of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def provision(
    cfg: PipelineConfig,
    region: str,
    *,
    endpoint: str,
    sqs_endpoint: str,
    s3: S3Client,
    sqs: SQSClient,
    s3vectors: S3VectorsClient,
    cloudformation: CloudFormationClient,
) -> tuple[ProvisionedStack, PipelineConfig]:
    """Create what the stack creates, named from ``cfg``; returns the effective config."""
    source = cfg.source_bucket_name or f"{cfg.name_prefix}-source"
    inventory = f"{cfg.name_prefix}-inventory"
    router_fn, embedder_fn = f"{cfg.name_prefix}-router", f"{cfg.name_prefix}-embedder"

    for bucket in (source, inventory):
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            location = cast("BucketLocationConstraintType", region)
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": location}
            )
    if cfg.source_bucket_versioned:
        s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_inventory_configuration(
        Bucket=source,
        Id=cfg.inventory_config_id,
        InventoryConfiguration=cast(
            Any,
            inventory_configuration(
                cfg, destination_bucket_arn=f"arn:aws:s3:::{inventory}", account_id=ACCOUNT_ID
            ),
        ),
    )

    dlq_url, dlq_arn = _create_queue(
        sqs,
        cfg.dlq_name,
        {**FIFO_QUEUE_ATTRIBUTES, "MessageRetentionPeriod": str(cfg.dlq_retention_days * 86400)},
    )
    queue_url, queue_arn = _create_queue(
        sqs,
        cfg.queue_name,
        {
            **FIFO_QUEUE_ATTRIBUTES,
            "VisibilityTimeout": str(cfg.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(cfg.queue_retention_days * 86400),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": cfg.max_receive_count}
            ),
        },
    )
    router_dlq_url, _ = _create_queue(
        sqs,
        cfg.router_dlq_name,
        {"MessageRetentionPeriod": str(cfg.dlq_retention_days * 86400)},
    )

    s3vectors.create_vector_bucket(
        vectorBucketName=cfg.vector_bucket_name,
        encryptionConfiguration={"sseType": VECTOR_ENCRYPTION},
    )
    index_arn = s3vectors.create_index(
        vectorBucketName=cfg.vector_bucket_name,
        indexName=cfg.index_name,
        dataType=VECTOR_DATA_TYPE,
        dimension=cfg.dimension,
        distanceMetric=cfg.distance_metric,
        metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
    )["indexArn"]

    router_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{router_fn}"
    s3.put_bucket_notification_configuration(
        Bucket=source,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": _notifications(cfg, router_arn),
        },
    )

    effective = cfg.replace(queue_url=queue_url, source_bucket_name=source, region=region)
    stack = ProvisionedStack(
        region=region,
        account_id=ACCOUNT_ID,
        endpoint=endpoint,
        sqs_endpoint=sqs_endpoint,
        stack_name=cfg.stack_name,
        source_bucket=source,
        inventory_bucket=inventory,
        vector_bucket=cfg.vector_bucket_name,
        index_name=cfg.index_name,
        index_arn=index_arn,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        router_dlq_url=router_dlq_url,
        router_function=router_fn,
        embedder_function=embedder_fn,
        deployed_config=deployed_config_json(effective),
        search_api_url=f"http://127.0.0.1:{free_port()}" if cfg.search_api else "",
        search_function=f"{cfg.name_prefix}-search" if cfg.search_api else "",
    )
    publish_stack(cloudformation, stack)
    return stack, effective


def free_port() -> int:
    """A port free right now on 127.0.0.1: the search API's (its own server, started with
    the runtime, listens there; the stack's SearchApiUrl output names it first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _create_queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """(URL, ARN) of a new queue."""
    url = sqs.create_queue(QueueName=name, Attributes=cast(Any, attributes))["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, attrs["QueueArn"]


def _notifications(
    cfg: PipelineConfig, router_arn: str
) -> list[LambdaFunctionConfigurationTypeDef]:
    """One notification per filter of the stack, every subscribed event, to the router."""
    events = [cast("EventType", event) for event in NOTIFICATION_EVENTS]
    out: list[LambdaFunctionConfigurationTypeDef] = []
    for i, f in enumerate(notification_filters(cfg)):
        rules: list[FilterRuleTypeDef] = [{"Name": "prefix", "Value": f.prefix}] if f.prefix else []
        rules.append({"Name": "suffix", "Value": f.suffix})
        out.append(
            {
                "Id": f"router-{i}",
                "LambdaFunctionArn": router_arn,
                "Events": events,
                "Filter": {"Key": {"FilterRules": rules}},
            }
        )
    return out


def publish_stack(cloudformation: CloudFormationClient, stack: ProvisionedStack) -> None:
    """A CloudFormation stack whose outputs name the local resources, as the real one does."""
    template = {
        "Description": "Local cloud stand-in for the image search pipeline stack",
        "Resources": {"LocalCloud": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in stack.outputs().as_outputs().items()},
    }
    # moto warns (from its server thread) that it does not model WaitConditionHandle.
    warnings.filterwarnings("ignore", message=".*AWS::CloudFormation::WaitConditionHandle.*")
    cloudformation.create_stack(StackName=stack.stack_name, TemplateBody=json.dumps(template))


__all__ = ["ProvisionedStack", "free_port", "provision", "publish_stack", "queue_name"]
