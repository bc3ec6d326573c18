"""The deployable stack: the pipeline construct plus the outputs the scripts read."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from imgsearch.blueprint import StackOutputs, deployed_config_json
from imgsearch.config import PipelineConfig
from infra.nag import suppress_reviewed_findings
from infra.pipeline import ImageSearchPipeline
from infra.search_api import SearchApi


class ImageSearchPipelineStack(cdk.Stack):
    """Everything one ``cdk deploy`` provisions."""

    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            id,
            description="Image search ingestion: S3 -> SQS FIFO -> Lambda -> Bedrock -> S3 Vectors",
            **kwargs,
        )
        self.pipeline = pipeline = ImageSearchPipeline(self, "Pipeline", config=config)
        buckets, queues, functions = pipeline.buckets, pipeline.queues, pipeline.functions
        self.search_api: SearchApi | None = None
        if config.search_api:
            self.search_api = SearchApi(
                self,
                "SearchApi",
                config=config,
                functions=functions,
                source_bucket=buckets.source_bucket,
                index_arn=pipeline.vectors.index_arn,
            )
            pipeline.observability.add_search_api(
                config, self.search_api.api, self.search_api.function
            )
        dashboard_url = (
            f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards/dashboard/{pipeline.observability.dashboard.dashboard_name}"
        )
        outputs = StackOutputs(
            source_bucket_name=buckets.source_bucket.bucket_name,
            inventory_bucket_name=buckets.inventory_bucket.bucket_name,
            queue_url=queues.queue.queue_url,
            dlq_url=queues.dlq.queue_url,
            router_dlq_url=functions.router_dlq.queue_url,
            vector_bucket_name=config.vector_bucket_name,
            index_name=config.index_name,
            index_arn=pipeline.vectors.index_arn,
            dashboard_url=dashboard_url,
            embedder_function_name=functions.embedder.function_name,
            router_function_name=functions.router.function_name,
            deployed_config=deployed_config_json(config),
            search_api_url=self.search_api.url if self.search_api else "",
            search_function_name=self.search_api.function.function_name if self.search_api else "",
        )
        for key, value in outputs.as_outputs().items():
            cdk.CfnOutput(self, key, value=value)
        # CDK makes each function DependsOn its role although the function's GetAtt of the
        # role already orders them; cfn-lint warns about that redundancy (W3005).
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["W3005"]}}}
        suppress_reviewed_findings(self, pipeline, self.search_api)
