"""What the stack builds, as plain data: the facts its constructs and the local cloud share.

The CDK constructs (``infra``) turn these into CloudFormation; the local cloud
(``localcloud.provision``) creates the same resources from them with boto3, so the two
cannot drift apart. Settings come from :class:`~imgsearch.config.PipelineConfig`; what
the design fixes lives here once. Pure: standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Final

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import OUTPUTS

# --------------------------------------------------------------------------- inventory

INVENTORY_FIELDS: tuple[str, ...] = (
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IntelligentTieringAccessTier",
)
"""Inventory columns beyond Bucket and Key: what the backfill needs to build messages
(size and ETag for the dedup id) and to skip objects that need a restore (storage class,
and the Intelligent-Tiering access tier: ``ARCHIVE_ACCESS``/``DEEP_ARCHIVE_ACCESS``). The
names are S3's ``InventoryOptionalField`` values (S3 API reference,
PutBucketInventoryConfiguration / InventoryConfiguration ``OptionalFields``)."""


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


# --------------------------------------------------------------------------- the Lambda asset

LAMBDA_AWS_SERVICES: tuple[str, ...] = ("s3", "s3vectors", "bedrock-runtime", "sqs", "xray")
"""The botocore services the functions create clients for (``xray``: the X-Ray SDK's own,
outside Lambda's facade). The asset keeps botocore's data for these only
(``infra.cold_start``); a handler that needs another one fails its import test."""


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
    deployed_config: str
    """:func:`deployed_config_json` of the deployed config."""
    search_api_url: str = ""
    search_function_name: str = ""
    """Empty without the search API (``search_api=false``): those outputs are left out."""

    def as_outputs(self) -> dict[str, str]:
        """``{output key: value}``, e.g. ``{"QueueUrl": "https://..."}``; empty values left out."""
        values = {getattr(OUTPUTS, f.name): getattr(self, f.name) for f in fields(self)}
        return {key: value for key, value in values.items() if value}


# --------------------------------------------------------------------------- deployed config

DEPLOYED_FIELDS: tuple[str, ...] = (
    "message_groups",
    "batch_size",
    "prefixes",
    "suffixes",
    "model_id",
    "dimension",
    "distance_metric",
    "index_purpose",
    "vector_bucket_name",
    "index_name",
    "queue_name",
    "dlq_name",
    "router_dlq_name",
    "inventory_config_id",
    "service_name",
    "metrics_namespace",
    "source_bucket_owner",
)
"""The settings a script must share with the deployed Lambdas, published as the stack's
``DeployedConfig`` output: the MessageGroupId (``message_groups``), what is indexed, the
model and index, the queues, where the inventory and the metrics are, and the source
bucket's configured owner (empty: the deploying account, which the Lambdas pin and the
scripts read from the stack's id). A script that used other values would order an object's
messages differently from the router, or select, embed, name or count differently from
what is deployed, or read a bucket of that name another account owns."""

INDEX_FIELDS: frozenset[str] = frozenset(
    (
        "vector_bucket_name",
        "index_name",
        "model_id",
        "dimension",
        "distance_metric",
        "index_purpose",
    )
)
"""The deployed fields that describe the deployed index (not another one a command names)."""

OUTPUT_VALUE_MAX_BYTES: Final = 4096
"""Kept to CloudFormation's 4,096 bytes (its quotas page, "Understand CloudFormation
quotas", gives 4,096 bytes for a parameter value, a custom resource's data and cfn-signal
data, and no larger size for an output value), so the output never fails a deploy."""


def deployed_config_json(cfg: PipelineConfig) -> str:
    """The ``DeployedConfig`` output: compact JSON of :data:`DEPLOYED_FIELDS`.

    Raises :class:`ConfigError` when it would not fit in one output (very many prefixes
    or suffixes), so synth fails instead of the deploy.
    """
    values = {name: getattr(cfg, name) for name in DEPLOYED_FIELDS}
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode())
    if size > OUTPUT_VALUE_MAX_BYTES:
        raise ConfigError(
            f"config keys 'prefixes' and 'suffixes': the deployed settings take {size} bytes "
            f"of JSON, above the {OUTPUT_VALUE_MAX_BYTES}-byte CloudFormation output limit; "
            "use fewer or shorter prefixes and suffixes"
        )
    return text


def parse_deployed_config(text: str) -> dict[str, Any]:
    """The typed values of a ``DeployedConfig`` output (only :data:`DEPLOYED_FIELDS`).

    A key this code does not know (a newer stack) is ignored, a missing one (an older
    stack) is absent from the result. Raises :class:`ConfigError` for anything else.
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"the stack's DeployedConfig output is not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError("the stack's DeployedConfig output is not a JSON object")
    present = {k: v for k, v in raw.items() if k in DEPLOYED_FIELDS}
    # The deployed fields were valid together; reading them over the defaults types them.
    typed = PipelineConfig.from_mapping(present)
    return {name: getattr(typed, name) for name in present}


__all__ = [
    "DEPLOYED_FIELDS",
    "FIFO_QUEUE_ATTRIBUTES",
    "INDEX_FIELDS",
    "INVENTORY_FIELDS",
    "NOTIFICATION_EVENTS",
    "OUTPUT_VALUE_MAX_BYTES",
    "VECTOR_DATA_TYPE",
    "VECTOR_ENCRYPTION",
    "StackOutputs",
    "deployed_config_json",
    "inventory_configuration",
    "inventory_prefix",
    "parse_deployed_config",
]
