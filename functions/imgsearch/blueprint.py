"""What the stack builds, as plain data: the facts its constructs and the local cloud share.

The CDK constructs (``infra``) turn these into CloudFormation; the local cloud
(``localcloud.provision``) creates the same resources from them with boto3, so the two
cannot drift apart. Settings come from :class:`~imgsearch.config.PipelineConfig`; what
the design fixes lives here once. Pure: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

from imgsearch.config import PipelineConfig
from imgsearch.contract import OUTPUTS

# --------------------------------------------------------------------------- inventory

INVENTORY_FIELDS: tuple[str, ...] = ("Size", "LastModifiedDate", "ETag", "StorageClass")
"""Inventory columns beyond Bucket and Key: what the backfill needs to build messages
(size and ETag for the dedup id, storage class to skip archived objects)."""


def inventory_prefix(cfg: PipelineConfig) -> str:
    """S3 Inventory takes one prefix filter: exactly one configured prefix, else none.

    With several prefixes the whole bucket is listed (the backfill selects keys itself).
    """
    return cfg.prefixes[0] if len(cfg.prefixes) == 1 else ""


def inventory_configuration(
    cfg: PipelineConfig, *, destination_bucket_arn: str, account_id: str
) -> dict[str, Any]:
    """The source bucket's S3 Inventory, as ``PutBucketInventoryConfiguration`` takes it.

    Current versions only (the backfill wants what exists now), CSV, on the configured
    schedule, into the inventory bucket.
    """
    inventory: dict[str, Any] = {
        "Id": cfg.inventory_config_id,
        "IsEnabled": True,
        "IncludedObjectVersions": "Current",
        "Destination": {
            "S3BucketDestination": {
                "Bucket": destination_bucket_arn,
                "AccountId": account_id,
                "Format": "CSV",
            }
        },
        "Schedule": {"Frequency": cfg.inventory_frequency},
        "OptionalFields": list(INVENTORY_FIELDS),
    }
    prefix = inventory_prefix(cfg)
    if prefix:
        inventory["Filter"] = {"Prefix": prefix}
    return inventory


# --------------------------------------------------------------------------- events

NOTIFICATION_EVENTS: tuple[str, ...] = (
    "s3:ObjectCreated:*",
    "s3:ObjectRemoved:*",
    "s3:LifecycleExpiration:*",
)
"""The S3 events the router subscribes to. Lifecycle expiry is reported as
``s3:LifecycleExpiration:*``, never as ``ObjectRemoved``, so it is subscribed too."""


# --------------------------------------------------------------------------- queues, vectors

FIFO_QUEUE_ATTRIBUTES: dict[str, str] = {
    "FifoQueue": "true",
    "DeduplicationScope": "messageGroup",
    "FifoThroughputLimit": "perMessageGroupId",
}
"""High-throughput FIFO: deduplication and throughput per message group (both queues)."""

VECTOR_DATA_TYPE: Final = "float32"
"""The only data type S3 Vectors stores."""
VECTOR_ENCRYPTION: Final = "AES256"
"""The vector bucket's server-side encryption (S3-managed keys)."""


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class StackOutputs:
    """The values of the stack's outputs; field names are those of ``contract.OutputKeys``.

    The stack fills it with CDK tokens, the local cloud with its resources' names;
    :meth:`as_outputs` is the one mapping from output key to value.
    """

    source_bucket_name: str
    inventory_bucket_name: str
    queue_url: str
    dlq_url: str
    router_dlq_url: str
    vector_bucket_name: str
    index_name: str
    index_arn: str
    dashboard_url: str
    embedder_function_name: str
    router_function_name: str

    def as_outputs(self) -> dict[str, str]:
        """``{output key: value}``, e.g. ``{"QueueUrl": "https://..."}``."""
        return {getattr(OUTPUTS, f.name): getattr(self, f.name) for f in fields(self)}


__all__ = [
    "FIFO_QUEUE_ATTRIBUTES",
    "INVENTORY_FIELDS",
    "NOTIFICATION_EVENTS",
    "VECTOR_DATA_TYPE",
    "VECTOR_ENCRYPTION",
    "StackOutputs",
    "inventory_configuration",
    "inventory_prefix",
]
