"""Config changes through ``-c key=value`` context reach every place they must, and only those."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from imgsearch.blueprint import INVENTORY_FIELDS
from imgsearch.contract import OUTPUTS
from tests.infra.conftest import Synth, SynthFn


def _diff(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """Paths at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{path}/{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}/{i}")
    elif a != b:
        yield path


def test_dimension_3072_changes_the_index_and_the_lambda_environment_and_nothing_else(
    synth: SynthFn,
) -> None:
    before = synth()
    # as `cdk synth -c dimension=3072` passes it: a string
    after = synth(dimension="3072")
    p = after.stack.pipeline
    index = after.stack.resolve(p.vectors.index.logical_id)
    router, embedder = (after.logical_id(f) for f in (p.functions.router, p.functions.embedder))
    assert after.stack.search_api is not None
    search = after.logical_id(after.stack.search_api.function)
    assert set(_diff(before.raw, after.raw)) == {
        f"/Resources/{index}/Properties/Dimension",
        f"/Resources/{router}/Properties/Environment/Variables/IMGSEARCH_DIMENSION",
        f"/Resources/{embedder}/Properties/Environment/Variables/IMGSEARCH_DIMENSION",
        f"/Resources/{search}/Properties/Environment/Variables/IMGSEARCH_DIMENSION",
        f"/Outputs/{OUTPUTS.deployed_config}/Value",  # the scripts read the dimension from it
    }
    assert after.raw["Resources"][index]["Properties"]["Dimension"] == 3072
    assert json.loads(after.raw["Outputs"][OUTPUTS.deployed_config]["Value"])["dimension"] == 3072
    for fn in (router, embedder):
        variables = after.raw["Resources"][fn]["Properties"]["Environment"]["Variables"]
        assert variables["IMGSEARCH_DIMENSION"] == "3072"


# --------------------------------------------------------------------------- imported bucket


@pytest.fixture(scope="module")
def imported(synth: SynthFn) -> Synth:
    return synth(source_bucket_name="my-photos", prefixes="cats/,dogs/")


def test_imported_bucket_is_not_created_but_gets_notifications(imported: Synth) -> None:
    p = imported.stack.pipeline
    buckets = imported.resources("AWS::S3::Bucket")
    assert set(buckets) == {
        imported.logical_id(p.buckets.inventory_bucket),
        imported.logical_id(p.buckets.access_logs_bucket),
    }
    _, notifications = imported.one("Custom::S3BucketNotifications")
    props = notifications["Properties"]
    assert props["BucketName"] == "my-photos"
    assert props["Managed"] is False  # keeps notifications others configured on the bucket
    filters = {
        (c["Events"][0], rules["prefix"], rules["suffix"])
        for c in props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
        for rules in [{r["Name"]: r["Value"] for r in c["Filter"]["Key"]["FilterRules"]}]
    }
    assert len(filters) == 3 * 2 * 10  # events x prefixes x suffix case variants
    assert ("s3:LifecycleExpiration:*", "cats/", ".jpg") in filters
    assert ("s3:ObjectRemoved:*", "dogs/", ".WEBP") in filters
    assert {f[1] for f in filters} == {"cats/", "dogs/"}


def test_imported_bucket_gets_the_same_inventory_through_a_custom_resource(
    imported: Synth,
) -> None:
    p = imported.stack.pipeline
    inventory_bucket = imported.logical_id(p.buckets.inventory_bucket)
    _, resource = imported.one("Custom::AWS")
    props = resource["Properties"]
    # the calls are JSON strings with the destination ARN spliced in
    create = json.loads(
        "".join(
            x if isinstance(x, str) else f"<{x.get('Ref') or x['Fn::GetAtt'][0]}>"
            for x in props["Create"]["Fn::Join"][1]
        )
    )
    assert create["action"] == "PutBucketInventoryConfiguration"
    assert create["parameters"] == {
        "Bucket": "my-photos",
        "Id": "imgsearch-inventory",
        "InventoryConfiguration": {
            "Id": "imgsearch-inventory",
            "IsEnabled": True,
            "IncludedObjectVersions": "Current",
            "Destination": {
                "S3BucketDestination": {
                    "Bucket": f"<{inventory_bucket}>",
                    "AccountId": "<AWS::AccountId>",
                    "Format": "CSV",
                }
            },
            "Schedule": {"Frequency": "Daily"},
            "OptionalFields": list(INVENTORY_FIELDS),
        },
    }
    delete = json.loads(props["Delete"])
    assert delete["action"] == "DeleteBucketInventoryConfiguration"
    assert props["InstallLatestAwsSdk"] is False  # nothing downloaded at deploy time
    # the custom resource may change the inventory of this one bucket, nothing else
    policy = next(
        v
        for k, v in imported.resources("AWS::IAM::Policy").items()
        if k in resource.get("DependsOn", [])
    )
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "s3:PutInventoryConfiguration",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-photos"]]},
        }
    ]
    # deep partial match: TLS-only deny, then S3 Inventory may write for this bucket only
    imported.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": inventory_bucket},
            "PolicyDocument": {
                "Statement": [
                    {"Effect": "Deny", "Action": "s3:*"},
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Condition": {
                            "ArnLike": {
                                "aws:SourceArn": {
                                    "Fn::Join": [
                                        "",
                                        ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-photos"],
                                    ]
                                }
                            }
                        },
                    },
                ],
                "Version": "2012-10-17",
            },
        },
    )


def test_imported_bucket_embedder_reads_only_the_configured_prefixes(imported: Synth) -> None:
    p = imported.stack.pipeline
    role = imported.logical_id(p.functions.embedder.role)
    statements = [
        st
        for policy in imported.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Sid") == "ReadSourceImages"
    ]
    assert [st["Resource"] for st in statements] == [
        [
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::my-photos/{prefix}*"]]}
            for prefix in ("cats/", "dogs/")
        ]
    ]
    env = imported.raw["Resources"][imported.logical_id(p.functions.embedder)]["Properties"]
    assert env["Environment"]["Variables"]["IMGSEARCH_SOURCE_BUCKET_NAME"] == "my-photos"
    assert env["Environment"]["Variables"]["IMGSEARCH_PREFIXES"] == '["cats/", "dogs/"]'


# --------------------------------------------------------------------------- created bucket options


@pytest.fixture(scope="module")
def options(synth: SynthFn) -> Synth:
    return synth(
        architecture="x86_64",
        source_bucket_versioned="true",
        prefixes=["photos/"],
        inventory_frequency="Weekly",
        log_retention_days="90",
        embedder_concurrency="8",
    )


def test_architecture_reaches_both_functions(options: Synth) -> None:
    p = options.stack.pipeline
    for fn in (p.functions.router, p.functions.embedder):
        props = options.raw["Resources"][options.logical_id(fn)]["Properties"]
        assert props["Architectures"] == ["x86_64"]


def test_versioning_single_prefix_inventory_and_retention_options(options: Synth) -> None:
    p = options.stack.pipeline
    source = options.raw["Resources"][options.logical_id(p.buckets.source_bucket)]["Properties"]
    assert source["VersioningConfiguration"] == {"Status": "Enabled"}
    (inventory,) = source["InventoryConfigurations"]
    assert inventory["Prefix"] == "photos/"  # S3 Inventory takes one prefix: the only one
    assert inventory["ScheduleFrequency"] == "Weekly"
    assert inventory["IncludedObjectVersions"] == "Current"
    for log_group in options.resources("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 90


def test_embedder_concurrency_sets_reserved_and_event_source_concurrency_together(
    options: Synth,
) -> None:
    p = options.stack.pipeline
    embedder = options.raw["Resources"][options.logical_id(p.functions.embedder)]
    assert embedder["Properties"]["ReservedConcurrentExecutions"] == 8
    _, mapping = options.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 8}
