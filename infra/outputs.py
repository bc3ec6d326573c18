"""The stack's CloudFormation output keys: the contract with the scripts.

The backfill and the ``imgsearch`` CLI find the deployed resources by reading these
outputs from ``DescribeStacks``; renaming one breaks them, so every key is written
here once. This module imports nothing from the CDK, so scripts can import it cheaply.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(frozen=True)
class OutputKeys:
    source_bucket_name: str = "SourceBucketName"
    inventory_bucket_name: str = "InventoryBucketName"
    queue_url: str = "QueueUrl"
    dlq_url: str = "DlqUrl"
    router_dlq_url: str = "RouterDlqUrl"
    vector_bucket_name: str = "VectorBucketName"
    index_name: str = "IndexName"
    index_arn: str = "IndexArn"
    dashboard_url: str = "DashboardUrl"
    embedder_function_name: str = "EmbedderFunctionName"
    router_function_name: str = "RouterFunctionName"


OUTPUTS = OutputKeys()
OUTPUT_KEYS: tuple[str, ...] = astuple(OUTPUTS)
