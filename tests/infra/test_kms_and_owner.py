"""A deploy that works on any account: customer-managed keys, a pinned bucket owner, the
retry-storm alarm, and no grant nothing uses.

* ``source_kms_key_arn`` (one ARN or a list): the embedder may ``kms:Decrypt`` through S3,
  which is also how Bedrock reads an image by S3 location with our permissions.
* ``kms_key_arn``: the vector bucket (``SseType aws:kms`` + ``KmsKeyArn``, the
  AWS::S3Vectors::VectorBucket EncryptionConfiguration) and both log groups use it.
* The source bucket's owner is pinned: ``s3:ResourceAccount`` on the source statements,
  the owner in the Lambda environment (ExpectedBucketOwner, bucketOwner), and the
  inventory destination only takes reports from that account, under the report prefix.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.api import lint

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import METRICS
from tests.infra.conftest import Synth, SynthFn

VECTOR_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SOURCE_KEYS = (
    "arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-1111-2222-3333-444444444444",
    "arn:aws:kms:us-east-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
)
OWNER = "444455556666"
KMS_OPTIONS = {
    "kms_key_arn": VECTOR_KEY,
    # as `-c source_kms_key_arn=a,b` passes a list
    "source_kms_key_arn": ",".join(SOURCE_KEYS),
}


@pytest.fixture(scope="module")
def kms(synth: SynthFn) -> Synth:
    return synth(**KMS_OPTIONS)


def _embedder_statements(s: Synth) -> dict[str, dict[str, Any]]:
    """The embedder's own statements, by Sid."""
    policy = s.raw["Resources"][s.logical_id(s.stack.pipeline.functions.policies["Embedder"])]
    return {st["Sid"]: st for st in policy["Properties"]["PolicyDocument"]["Statement"]}


def _env(s: Synth) -> dict[str, Any]:
    fn = s.raw["Resources"][s.logical_id(s.stack.pipeline.functions.embedder)]
    variables: dict[str, Any] = fn["Properties"]["Environment"]["Variables"]
    return variables


def _inventory_statements(s: Synth) -> list[dict[str, Any]]:
    inventory = s.logical_id(s.stack.pipeline.buckets.inventory_bucket)
    [policy] = [
        p
        for p in s.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": inventory}
    ]
    return [
        st
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]


# --------------------------------------------------------------------------- KMS


def test_default_keeps_aws_managed_encryption_and_grants_no_kms(synth: SynthFn) -> None:
    s = synth()
    _, bucket = s.one("AWS::S3Vectors::VectorBucket")
    assert bucket["Properties"]["EncryptionConfiguration"] == {"SseType": "AES256"}
    for group in s.resources("AWS::Logs::LogGroup").values():
        assert "KmsKeyId" not in group["Properties"]
    assert not any("kms:" in json.dumps(st) for st in _embedder_statements(s).values())


def test_kms_key_arn_encrypts_the_vector_bucket_and_the_log_groups(kms: Synth) -> None:
    _, bucket = kms.one("AWS::S3Vectors::VectorBucket")
    assert bucket["Properties"]["EncryptionConfiguration"] == {
        "SseType": "aws:kms",
        "KmsKeyArn": VECTOR_KEY,
    }
    groups = kms.resources("AWS::Logs::LogGroup")
    assert len(groups) == 4  # router, embedder, search function, search API access logs
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == VECTOR_KEY
    # S3 Vectors encrypts and decrypts with the caller's permissions
    use = _embedder_statements(kms)["UseVectorBucketKey"]
    assert sorted(use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert use["Resource"] == VECTOR_KEY


def test_source_kms_keys_may_decrypt_only_through_s3(kms: Synth) -> None:
    decrypt = _embedder_statements(kms)["DecryptSourceImages"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == list(SOURCE_KEYS)
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
        }
    }


def test_kms_options_pass_cdk_nag_and_cfn_lint(kms: Synth) -> None:
    report = kms.nag_report()
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    assert [str(m) for m in lint(json.dumps(kms.raw), regions=["us-east-1"])] == []


# --------------------------------------------------------------------------- the owner


def test_source_statements_are_pinned_to_the_deploying_account(synth: SynthFn) -> None:
    s = synth()
    statements = _embedder_statements(s)
    for sid in ("ReadSourceImages", "TellMissingFromForbidden"):
        assert statements[sid]["Condition"] == {
            "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
        }
    assert _env(s)["IMGSEARCH_SOURCE_BUCKET_OWNER"] == {"Ref": "AWS::AccountId"}


def test_a_configured_owner_pins_iam_the_environment_and_the_inventory(synth: SynthFn) -> None:
    s = synth(source_bucket_name="my-photos", source_bucket_owner=OWNER)
    statements = _embedder_statements(s)
    for sid in ("ReadSourceImages", "TellMissingFromForbidden"):
        assert statements[sid]["Condition"] == {"StringEquals": {"s3:ResourceAccount": OWNER}}
    assert _env(s)["IMGSEARCH_SOURCE_BUCKET_OWNER"] == OWNER
    [inventory] = _inventory_statements(s)
    assert inventory["Condition"]["StringEquals"] == {"aws:SourceAccount": OWNER}


def test_no_version_read_is_granted(synth: SynthFn) -> None:
    """The embedder reads current versions only (no VersionId), so no s3:GetObjectVersion."""
    assert "s3:GetObjectVersion" not in json.dumps(synth().raw)
    assert _embedder_statements(synth())["ReadSourceImages"]["Action"] == "s3:GetObject"


@pytest.mark.parametrize("imported", [False, True], ids=["created", "imported"])
def test_inventory_reports_only_from_the_source_account_under_the_report_prefix(
    synth: SynthFn, imported: bool
) -> None:
    s = synth(source_bucket_name="my-photos") if imported else synth()
    buckets = s.stack.pipeline.buckets
    inventory = s.logical_id(buckets.inventory_bucket)
    source_arn: Any
    if imported:
        source_name: Any = "my-photos"
        source_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-photos"]]}
    else:
        source = s.logical_id(buckets.source_bucket)
        source_name, source_arn = {"Ref": source}, {"Fn::GetAtt": [source, "Arn"]}
    # one statement for S3 (CDK's own, on the whole bucket for any account, is gone)
    [statement] = _inventory_statements(s)
    assert statement["Action"] == "s3:PutObject"
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": source_arn},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    reports = (
        [{"Fn::GetAtt": [inventory, "Arn"]}, "/", source_name, "/imgsearch-inventory/*"]
        if not imported
        else [{"Fn::GetAtt": [inventory, "Arn"]}, "/my-photos/imgsearch-inventory/*"]
    )
    assert statement["Resource"] == {"Fn::Join": ["", reports]}


def test_created_source_bucket_keeps_its_inventory_configuration(synth: SynthFn) -> None:
    s = synth()
    props = s.raw["Resources"][s.logical_id(s.stack.pipeline.buckets.source_bucket)]["Properties"]
    [inventory] = props["InventoryConfigurations"]
    assert inventory["IncludedObjectVersions"] == "Current"
    assert inventory["Destination"]["BucketAccountId"] == {"Ref": "AWS::AccountId"}


# --------------------------------------------------------------------------- the alarm


def test_a_retry_storm_alarms_on_bedrocks_failed_calls_for_the_model(synth: SynthFn) -> None:
    s = synth()
    alarms = [
        a["Properties"]
        for a in s.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "ImageSearchPipeline-model-retry-storm"
    ]
    [alarm] = alarms
    assert alarm["Threshold"] == 100
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert "FILL(throttled, 0)" in next(
        m["Expression"] for m in metrics.values() if "Expression" in m
    )
    for id_, name in (
        ("throttled", "InvocationThrottles"),
        ("client", "InvocationClientErrors"),
        ("server", "InvocationServerErrors"),
    ):
        stat = metrics[id_]["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/Bedrock"
        assert stat["Metric"]["MetricName"] == name
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "ModelId", "Value": "amazon.nova-2-multimodal-embeddings-v1:0"}
        ]
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")


def test_the_alarm_threshold_is_a_setting(synth: SynthFn) -> None:
    s = synth(model_failed_calls_alarm_threshold="25")
    [alarm] = [
        a["Properties"]
        for a in s.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName", "").endswith("model-retry-storm")
    ]
    assert alarm["Threshold"] == 25


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"kms_key_arn": "alias/my-key"}, "'kms_key_arn': 'alias/my-key' is not a KMS key ARN"),
        (
            {"source_kms_key_arn": "arn:aws:kms:us-east-1:111122223333:alias/photos"},
            "'source_kms_key_arn'",
        ),
        ({"source_bucket_owner": "me"}, "'source_bucket_owner': 'me' is not an account id"),
        ({"max_model_attempts_per_object": "0"}, "'max_model_attempts_per_object'"),
    ],
)
def test_bad_key_owner_and_budget_settings_fail_naming_the_key(
    overrides: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        PipelineConfig.from_mapping(overrides)


def test_one_source_key_or_a_list_reads_back_from_the_lambda_environment() -> None:
    one = PipelineConfig.from_mapping({"source_kms_key_arn": SOURCE_KEYS[0]})
    assert one.source_kms_key_arn == SOURCE_KEYS[:1]
    both = PipelineConfig.from_mapping({"source_kms_key_arn": list(SOURCE_KEYS)})
    assert PipelineConfig.from_env(both.to_lambda_env()) == both


def _evaluate(expression: str, values: dict[str, float | None]) -> float:
    """CloudWatch metric math's IF and FILL over one period's sums (None: no data).

    Python evaluates both branches of IF, so a zero count stands as NaN here: every
    comparison with it is false, as IF's condition is, and no branch divides by zero."""
    env: dict[str, Any] = {
        "IF": lambda cond, then, other: then if cond else other,
        "FILL": lambda value, fill: fill if value is None else value,
    }
    env |= {k: float("nan") if v == 0 else v for k, v in values.items()}
    return float(eval(expression, {"__builtins__": {}}, env))  # the alarm's own expression


@pytest.mark.parametrize(
    ("embedded", "retries", "alarms"),
    [
        (1000, 0, False),  # a full-speed backfill: one call per image
        (1000, 900, False),  # heavy but bounded retrying: 1.9 calls per image
        (1000, 2500, True),  # a retry storm: 3.5 calls per image
        (5, 40, False),  # a quiet period: too few images to judge (the failed-calls alarm)
        (0, 400, False),  # nothing embedded: no ratio
        (50, None, False),  # no retry datapoint at all
    ],
)
def test_a_storm_of_model_retries_per_embedded_image_alarms(
    synth: SynthFn, embedded: int, retries: int | None, alarms: bool
) -> None:
    """This stack's own counts (images embedded, Bedrock retries), not Bedrock's
    account-wide metrics, which another stack or the CLI's searches share."""
    s = synth()
    [alarm] = [
        a["Properties"]
        for a in s.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "ImageSearchPipeline-model-calls-per-image"
    ]
    assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        "GreaterThanThreshold",
        "notBreaching",
    )
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    expression = next(m["Expression"] for m in metrics.values() if "Expression" in m)
    for id_, name in (
        ("embedded", METRICS.images_embedded),
        ("retries", METRICS.transient_retries),
    ):
        stat = metrics[id_]["MetricStat"]
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]) == ("ImageSearch", name)
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": "imgsearch"}]
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")
    value = _evaluate(expression, {"embedded": embedded, "retries": retries})
    assert (value > alarm["Threshold"]) is alarms, (expression, value)
