"""Buckets: the images (created or imported), their inventory and access logs, the vectors.

Removal policy: every bucket and the vector index are RETAINED when the stack is
deleted. The source bucket holds the user's images; the vector bucket holds
embeddings that cost Bedrock calls to recreate; inventory reports and access logs
are records a user may still want. CloudFormation cannot delete a non-empty bucket
anyway, and emptying it on delete (``auto_delete_objects``) would mean a Lambda that
deletes user data.
"""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3vectors as s3vectors
from aws_cdk import custom_resources as cr
from constructs import Construct

from imgsearch.blueprint import (
    INVENTORY_FIELDS,
    VECTOR_DATA_TYPE,
    VECTOR_ENCRYPTION,
    inventory_configuration,
    inventory_prefix,
)
from imgsearch.config import PipelineConfig
from imgsearch.vectors import NON_FILTERABLE_KEYS


class DataBuckets(Construct):
    """The source bucket with its inventory and notifications' target, plus their logs."""

    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, id)
        cfg = config
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            **_secure_bucket_props(),
            lifecycle_rules=[
                s3.LifecycleRule(expiration=cdk.Duration.days(cfg.log_retention_days))
            ],
        )
        self.inventory_bucket = s3.Bucket(
            self,
            "Inventory",
            **_secure_bucket_props(),
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="inventory/",
            lifecycle_rules=[
                s3.LifecycleRule(expiration=cdk.Duration.days(cfg.inventory_retention_days))
            ],
        )
        imported = bool(cfg.source_bucket_name)
        self.source_bucket: s3.IBucket
        if imported:
            self.source_bucket = s3.Bucket.from_bucket_name(self, "Source", cfg.source_bucket_name)
            self._inventory_on_imported_bucket(cfg)
        else:
            self.source_bucket = s3.Bucket(
                self,
                "Source",
                **_secure_bucket_props(),
                versioned=cfg.source_bucket_versioned,
                server_access_logs_bucket=self.access_logs_bucket,
                server_access_logs_prefix="source/",
            )
            # L1, not the L2 ``inventories``: CDK's own destination statement allows the
            # whole bucket for any account; ours (below) is pinned to the owner and prefix.
            cast(s3.CfnBucket, self.source_bucket.node.default_child).inventory_configurations = [
                s3.CfnBucket.InventoryConfigurationProperty(
                    id=cfg.inventory_config_id,
                    enabled=True,
                    destination=s3.CfnBucket.DestinationProperty(
                        bucket_arn=self.inventory_bucket.bucket_arn,
                        bucket_account_id=cdk.Stack.of(self).account,
                        format="CSV",
                    ),
                    # current versions only: the backfill wants what exists now
                    included_object_versions="Current",
                    optional_fields=list(INVENTORY_FIELDS),
                    prefix=inventory_prefix(cfg) or None,
                    schedule_frequency=cfg.inventory_frequency,
                )
            ]
        self._allow_inventory_reports(cfg)

    def _inventory_on_imported_bucket(self, cfg: PipelineConfig) -> None:
        """Configure S3 Inventory on a bucket this stack does not own.

        CloudFormation can only set inventory on buckets it created, so an
        ``AwsCustomResource`` calls ``PutBucketInventoryConfiguration`` on deploy and
        ``DeleteBucketInventoryConfiguration`` on stack delete (both need the IAM
        action ``s3:PutInventoryConfiguration``, on this one bucket). The
        configuration is the same one the created bucket gets (and the local cloud).
        """
        inventory = inventory_configuration(
            cfg,
            destination_bucket_arn=self.inventory_bucket.bucket_arn,
            account_id=cdk.Stack.of(self).account,
        )
        target = {"Bucket": cfg.source_bucket_name, "Id": cfg.inventory_config_id}
        physical_id = cr.PhysicalResourceId.of(
            f"{cfg.source_bucket_name}/{cfg.inventory_config_id}"
        )
        put = cr.AwsSdkCall(
            service="S3",
            action="PutBucketInventoryConfiguration",
            parameters={**target, "InventoryConfiguration": inventory},
            physical_resource_id=physical_id,
        )
        cr.AwsCustomResource(
            self,
            "SourceInventory",
            on_create=put,
            on_update=put,
            on_delete=cr.AwsSdkCall(
                service="S3",
                action="DeleteBucketInventoryConfiguration",
                parameters=target,
                physical_resource_id=physical_id,
            ),
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["s3:PutInventoryConfiguration"],
                        resources=[self.source_bucket.bucket_arn],
                    )
                ]
            ),
            install_latest_aws_sdk=False,
        )

    def _allow_inventory_reports(self, cfg: PipelineConfig) -> None:
        """S3 Inventory may write the source bucket's reports here, and nothing else.

        As in the S3 User Guide's destination bucket policy ("Configuring Amazon S3
        Inventory"), on both the source bucket (``aws:SourceArn``) and its account
        (``aws:SourceAccount``): a bucket name carries no account id and this bucket
        outlives the stack, so an account that re-creates the source bucket's name must
        not deliver forged reports. Reports live under ``<source-bucket>/<config-id>/``
        ("Locating your inventory list"), the one prefix allowed.
        """
        owner = source_bucket_owner(self, cfg)
        reports = f"{self.source_bucket.bucket_name}/{cfg.inventory_config_id}/*"
        self.inventory_bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSourceBucketInventory",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.inventory_bucket.arn_for_objects(reports)],
                conditions={
                    "ArnLike": {"aws:SourceArn": self.source_bucket.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": owner},
                },
            )
        )


class VectorStore(Construct):
    """The S3 vector bucket and its one index."""

    def __init__(self, scope: Construct, id: str, *, config: PipelineConfig) -> None:
        super().__init__(scope, id)
        cfg = config
        self.bucket = s3vectors.CfnVectorBucket(
            self,
            "Bucket",
            vector_bucket_name=cfg.vector_bucket_name,
            # A customer-managed key: sseType aws:kms with its ARN (AWS::S3Vectors::VectorBucket
            # EncryptionConfiguration; fixed at creation, a change replaces the bucket).
            encryption_configuration=s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type="aws:kms", kms_key_arn=cfg.kms_key_arn
            )
            if cfg.kms_key_arn
            else s3vectors.CfnVectorBucket.EncryptionConfigurationProperty(
                sse_type=VECTOR_ENCRYPTION
            ),
        )
        self.index = s3vectors.CfnIndex(
            self,
            "Index",
            vector_bucket_arn=self.bucket.attr_vector_bucket_arn,
            index_name=cfg.index_name,
            data_type=VECTOR_DATA_TYPE,
            dimension=cfg.dimension,
            distance_metric=cfg.distance_metric,
            # Large fields (full URIs) are stored but not filterable, so they never count
            # against the 2 KB filterable-metadata limit.
            metadata_configuration=s3vectors.CfnIndex.MetadataConfigurationProperty(
                non_filterable_metadata_keys=list(NON_FILTERABLE_KEYS)
            ),
        )
        for resource in (self.bucket, self.index):
            resource.apply_removal_policy(cdk.RemovalPolicy.RETAIN)

    @property
    def index_arn(self) -> str:
        return self.index.attr_index_arn


def _secure_bucket_props() -> dict[str, Any]:
    return {
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "enforce_ssl": True,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        "removal_policy": cdk.RemovalPolicy.RETAIN,
    }


def source_bucket_owner(scope: Construct, cfg: PipelineConfig) -> str:
    """The account that must own the source bucket: configured, else the deploying one."""
    return cfg.source_bucket_owner or cdk.Stack.of(scope).account
