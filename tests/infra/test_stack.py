"""The default stack (``cdk.json`` as committed): every property the issue lists."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from imgsearch.blueprint import INVENTORY_FIELDS
from imgsearch.config import IMAGE_SUFFIXES, PipelineConfig
from imgsearch.contract import METRICS, OUTPUT_KEYS
from imgsearch.vectors import NON_FILTERABLE_KEYS
from tests.infra.conftest import Synth, SynthFn, cdk_context, getatt


@pytest.fixture(scope="module")
def default(synth: SynthFn) -> Synth:
    return synth()


@pytest.fixture(scope="module")
def ids(default: Synth) -> dict[str, str]:
    """Logical ids of the resources the assertions refer to."""
    p = default.stack.pipeline
    return {
        "queue": default.logical_id(p.queues.queue),
        "dlq": default.logical_id(p.queues.dlq),
        "router_dlq": default.logical_id(p.functions.router_dlq),
        "source": default.logical_id(p.buckets.source_bucket),
        "inventory": default.logical_id(p.buckets.inventory_bucket),
        "logs": default.logical_id(p.buckets.access_logs_bucket),
        "index": default.stack.resolve(p.vectors.index.logical_id),
        "vector_bucket": default.stack.resolve(p.vectors.bucket.logical_id),
        "router": default.logical_id(p.functions.router),
        "embedder": default.logical_id(p.functions.embedder),
    }


def _function(default: Synth, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = default.raw["Resources"][logical_id]["Properties"]
    return props


# --------------------------------------------------------------------------- queue


def test_queue_is_fifo_with_900s_visibility_encryption_and_fifo_dlq(
    default: Synth, ids: dict[str, str]
) -> None:
    queue = default.raw["Resources"][ids["queue"]]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["VisibilityTimeout"] == 900
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["QueueName"] == "imgsearch-embed.fifo"
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [ids["dlq"], "Arn"]},
        "maxReceiveCount": 5,
    }
    dlq = default.raw["Resources"][ids["dlq"]]["Properties"]
    assert dlq["FifoQueue"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("queue", ["queue", "dlq", "router_dlq"])
def test_every_queue_denies_requests_without_tls(
    default: Synth, ids: dict[str, str], queue: str
) -> None:
    default.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": ids[queue]}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sqs:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_queues_are_destroyed_with_the_stack(default: Synth) -> None:
    for queue in default.resources("AWS::SQS::Queue").values():
        assert queue["DeletionPolicy"] == "Delete"


# --------------------------------------------------------------------------- embedder


def test_embedder_function(default: Synth, ids: dict[str, str]) -> None:
    fn = _function(default, ids["embedder"])
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    assert fn["MemorySize"] == 512
    assert fn["Timeout"] == 60
    assert fn["ReservedConcurrentExecutions"] == 5
    assert fn["Handler"] == "imgsearch.handlers.embedder.lambda_handler"
    assert "TracingConfig" not in fn  # tracing is a setting, off by default
    assert fn["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"


def test_tracing_on_traces_every_function_and_grants_xray_writes(synth: SynthFn) -> None:
    traced = synth(tracing="true")
    p = traced.stack.pipeline
    assert traced.stack.search_api is not None
    for fn in (p.functions.router, p.functions.embedder, traced.stack.search_api.function):
        props = _function(traced, traced.logical_id(fn))
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "POWERTOOLS_TRACE_DISABLED" not in props["Environment"]["Variables"]
        granted = traced.granted(traced.logical_id(fn))
        assert {("xray:PutTraceSegments", '"*"'), ("xray:PutTelemetryRecords", '"*"')} <= granted


def test_embedder_reads_the_queue_one_message_at_a_time_with_capped_concurrency(
    default: Synth, ids: dict[str, str]
) -> None:
    _, mapping = default.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"] == {
        "BatchSize": 1,
        "EventSourceArn": {"Fn::GetAtt": [ids["queue"], "Arn"]},
        "FunctionName": {"Ref": ids["embedder"]},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 5},
    }


def test_both_functions_get_exactly_the_configs_lambda_environment(
    default: Synth, ids: dict[str, str]
) -> None:
    cfg = PipelineConfig.from_mapping(cdk_context())
    expected: dict[str, Any] = dict(cfg.to_lambda_env())
    expected["IMGSEARCH_QUEUE_URL"] = {"Ref": ids["queue"]}
    expected["IMGSEARCH_SOURCE_BUCKET_NAME"] = {"Ref": ids["source"]}
    # the embedder pins the source bucket's owner: by default the deploying account
    expected["IMGSEARCH_SOURCE_BUCKET_OWNER"] = {"Ref": "AWS::AccountId"}
    for fn in ("router", "embedder"):
        assert _function(default, ids[fn])["Environment"]["Variables"] == expected
    # the environment reads back into the same config (with the deploy-time values)
    env = {k: (v if isinstance(v, str) else "deploy-time") for k, v in expected.items()}
    env["IMGSEARCH_SOURCE_BUCKET_OWNER"] = "123456789012"
    deployed = PipelineConfig.from_env(env)
    assert deployed.replace(queue_url="", source_bucket_name="", source_bucket_owner="") == cfg


def test_lambda_environment_fits_lambdas_4_kb_limit(default: Synth, ids: dict[str, str]) -> None:
    variables = _function(default, ids["embedder"])["Environment"]["Variables"]
    # deploy-time values: a queue URL and a bucket name, at their longest
    resolved = {k: v if isinstance(v, str) else "x" * 150 for k, v in variables.items()}
    assert sum(len(k) + len(v) for k, v in resolved.items()) < 4096


# --------------------------------------------------------------------------- router


def test_router_function_and_its_dead_letter_queue(default: Synth, ids: dict[str, str]) -> None:
    fn = _function(default, ids["router"])
    assert fn["Runtime"] == "python3.13"
    assert fn["Handler"] == "imgsearch.handlers.router.lambda_handler"
    assert fn["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [ids["router_dlq"], "Arn"]}}
    assert "ReservedConcurrentExecutions" not in fn
    router_dlq = default.raw["Resources"][ids["router_dlq"]]["Properties"]
    assert "FifoQueue" not in router_dlq  # Lambda's async DLQ must be a standard queue


def test_s3_notifications_reach_the_router_for_every_suffix_case_and_both_events(
    default: Synth, ids: dict[str, str]
) -> None:
    _, notifications = default.one("Custom::S3BucketNotifications")
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": ids["source"]}
    configs = props["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    seen = set()
    for c in configs:
        assert c["LambdaFunctionArn"] == {"Fn::GetAtt": [ids["router"], "Arn"]}
        rules = {r["Name"]: r["Value"] for r in c["Filter"]["Key"]["FilterRules"]}
        assert "prefix" not in rules  # the default prefix "" is the whole bucket
        (event,) = c["Events"]
        seen.add((event, rules["suffix"]))
    suffixes = {v for s in IMAGE_SUFFIXES for v in (s, s.upper())}
    events = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*")
    assert seen == {(e, s) for e in events for s in suffixes}
    assert len(configs) == len(seen)
    assert "QueueConfigurations" not in props["NotificationConfiguration"]  # FIFO: impossible
    default.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [ids["router"], "Arn"]},
            "Principal": "s3.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [ids["source"], "Arn"]},
        },
    )


# --------------------------------------------------------------------------- IAM


def test_embedder_role_grants_exactly_the_listed_actions(
    default: Synth, ids: dict[str, str]
) -> None:
    bedrock = json.dumps(
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":bedrock:",
                    {"Ref": "AWS::Region"},
                    "::foundation-model/amazon.nova-2-multimodal-embeddings-v1:0",
                ],
            ]
        },
        sort_keys=True,
    )
    objects = json.dumps(
        {"Fn::Join": ["", [{"Fn::GetAtt": [ids["source"], "Arn"]}, "/*"]]}, sort_keys=True
    )
    index = getatt(ids["index"], "IndexArn")
    queue = getatt(ids["queue"])
    log_group = _function(default, ids["embedder"])["LoggingConfig"]["LogGroup"]["Ref"]
    logs = getatt(log_group)
    assert default.granted(ids["embedder"]) == {
        # the current version only (no VersionId is ever read): no s3:GetObjectVersion
        ("s3:GetObject", objects),
        # 404 rather than 403 for a deleted object, so deletes can be confirmed
        ("s3:ListBucket", getatt(ids["source"])),
        ("bedrock:InvokeModel", bedrock),
        ("s3vectors:PutVectors", index),
        ("s3vectors:DeleteVectors", index),
        ("s3vectors:GetVectors", index),
        # what the SQS event source mapping polls with (added by CDK's SqsEventSource)
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:ChangeMessageVisibility", queue),
        ("sqs:GetQueueAttributes", queue),
        ("sqs:GetQueueUrl", queue),
        ("logs:CreateLogStream", logs),
        ("logs:PutLogEvents", logs),
    }


def test_router_role_may_only_send_to_the_queue(default: Synth, ids: dict[str, str]) -> None:
    log_group = _function(default, ids["router"])["LoggingConfig"]["LogGroup"]["Ref"]
    assert default.granted(ids["router"]) == {
        ("sqs:SendMessage", getatt(ids["queue"])),
        # Lambda itself puts failed async events into the router's DLQ with this role
        ("sqs:SendMessage", getatt(ids["router_dlq"])),
        ("logs:CreateLogStream", getatt(log_group)),
        ("logs:PutLogEvents", getatt(log_group)),
    }


@pytest.mark.parametrize("fn", ["router", "embedder"])
def test_function_roles_have_no_managed_policies_and_own_log_groups(
    default: Synth, ids: dict[str, str], fn: str
) -> None:
    props = _function(default, ids[fn])
    role = default.raw["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role
    log_group = default.raw["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 30


# --------------------------------------------------------------------------- vectors


def test_vector_index_dimension_metric_and_non_filterable_keys(
    default: Synth, ids: dict[str, str]
) -> None:
    index = default.raw["Resources"][ids["index"]]
    assert index["Properties"] == {
        "DataType": "float32",
        "Dimension": 1024,
        "DistanceMetric": "cosine",
        "IndexName": "images",
        "MetadataConfiguration": {"NonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
        "VectorBucketArn": {"Fn::GetAtt": [ids["vector_bucket"], "VectorBucketArn"]},
    }
    assert index["DeletionPolicy"] == index["UpdateReplacePolicy"] == "Retain"
    bucket = default.raw["Resources"][ids["vector_bucket"]]
    assert bucket["Properties"]["VectorBucketName"] == "imgsearch-vectors"
    assert bucket["DeletionPolicy"] == "Retain"


# --------------------------------------------------------------------------- buckets


@pytest.mark.parametrize("bucket", ["source", "inventory", "logs"])
def test_buckets_are_private_encrypted_tls_only_and_retained(
    default: Synth, ids: dict[str, str], bucket: str
) -> None:
    resource = default.raw["Resources"][ids[bucket]]
    props = resource["Properties"]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"),
        True,
    )
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert resource["DeletionPolicy"] == "Retain"
    default.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": ids[bucket]},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_source_bucket_inventory_is_daily_csv_current_versions(
    default: Synth, ids: dict[str, str]
) -> None:
    props = default.raw["Resources"][ids["source"]]["Properties"]
    assert "VersioningConfiguration" not in props  # versioning is opt-in
    assert props["InventoryConfigurations"] == [
        {
            "Id": "imgsearch-inventory",
            "Enabled": True,
            "Destination": {
                "BucketArn": {"Fn::GetAtt": [ids["inventory"], "Arn"]},
                "BucketAccountId": {"Ref": "AWS::AccountId"},
                "Format": "CSV",
            },
            "IncludedObjectVersions": "Current",
            "OptionalFields": list(INVENTORY_FIELDS),
            "ScheduleFrequency": "Daily",
        }
    ]
    assert {"Size", "LastModifiedDate", "ETag"} <= set(INVENTORY_FIELDS)


def test_inventory_bucket_lets_s3_write_reports_for_the_source_bucket_only(
    default: Synth, ids: dict[str, str]
) -> None:
    default.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": ids["inventory"]},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": "s3:PutObject",
                                "Condition": {
                                    "ArnLike": {
                                        "aws:SourceArn": {"Fn::GetAtt": [ids["source"], "Arn"]}
                                    }
                                },
                            }
                        )
                    ]
                )
            },
        },
    )


def test_data_buckets_log_access_to_the_log_bucket(default: Synth, ids: dict[str, str]) -> None:
    for bucket, prefix in (("source", "source/"), ("inventory", "inventory/")):
        assert default.raw["Resources"][ids[bucket]]["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": ids["logs"]},
            "LogFilePrefix": prefix,
        }


# --------------------------------------------------------------------------- observability


def _alarm(default: Synth, name: str) -> dict[str, Any]:
    for alarm in default.resources("AWS::CloudWatch::Alarm").values():
        if alarm["Properties"]["AlarmName"] == f"ImageSearchPipeline-{name}":
            props: dict[str, Any] = alarm["Properties"]
            return props
    raise AssertionError(f"no alarm {name}")


@pytest.mark.parametrize(
    ("name", "resource", "namespace", "metric", "threshold"),
    [
        ("dlq-not-empty", "dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 0),
        ("router-dlq-not-empty", "router_dlq", "AWS/SQS", "ApproximateNumberOfMessagesVisible", 0),
        ("queue-not-draining", "queue", "AWS/SQS", "ApproximateAgeOfOldestMessage", 3600),
        ("embedder-errors", "embedder", "AWS/Lambda", "Errors", 0),
        ("router-errors", "router", "AWS/Lambda", "Errors", 0),
    ],
)
def test_alarms(
    default: Synth,
    ids: dict[str, str],
    name: str,
    resource: str,
    namespace: str,
    metric: str,
    threshold: int,
) -> None:
    alarm = _alarm(default, name)
    assert alarm["Namespace"] == namespace
    assert alarm["MetricName"] == metric
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    (dimension,) = alarm["Dimensions"]
    if namespace == "AWS/SQS":
        assert dimension["Value"] == {"Fn::GetAtt": [ids[resource], "QueueName"]}
    else:
        assert dimension["Value"] == {"Ref": ids[resource]}


def test_a_wave_of_permanent_failures_alarms_within_five_minutes(
    default: Synth, synth: SynthFn
) -> None:
    """Permanent failures are acknowledged, so no DLQ shows them: a rate alarm does."""
    threshold = PipelineConfig().permanent_failures_alarm_threshold
    alarm = _alarm(default, "permanent-failures")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("ImageSearch", METRICS.permanent_failures)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "imgsearch"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (threshold, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    assert 1 <= threshold <= 100
    custom = synth(**{"permanent_failures_alarm_threshold": 3})
    assert _alarm(custom, "permanent-failures")["Threshold"] == 3


def _dashboard_metrics(default: Synth) -> tuple[set[tuple[str, ...]], list[str]]:
    """The dashboard's metrics as (namespace, name, dimension, value, ...) and its expressions.

    Deploy-time values in the body (queue names, function names) become ``<LogicalId>``.
    """
    _, dashboard = default.one("AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == "ImageSearchPipeline"
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads(
        "".join(
            p if isinstance(p, str) else f"<{(p.get('Ref') or p['Fn::GetAtt'][0])}>" for p in parts
        )
    )
    metrics: set[tuple[str, ...]] = set()
    expressions: list[str] = []
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expressions.append(row[0]["expression"])
            else:
                metrics.add(tuple(x for x in row if isinstance(x, str)))
    return metrics, expressions


def test_dashboard_shows_queues_functions_and_the_pipelines_own_metrics(
    default: Synth, ids: dict[str, str]
) -> None:
    metrics, expressions = _dashboard_metrics(default)
    for queue in ("queue", "dlq", "router_dlq"):
        assert (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            f"<{ids[queue]}>",
        ) in metrics
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", f"<{ids['queue']}>") in metrics
    for fn in ("router", "embedder"):
        for name in ("Invocations", "Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", name, "FunctionName", f"<{ids[fn]}>") in metrics
    own = {m[1] for m in metrics if m[0] == "ImageSearch"}
    assert own == {getattr(METRICS, f) for f in METRICS.__dataclass_fields__} - {
        METRICS.permanent_failures_by_reason
    }
    assert all(m[2:] == ("service", "imgsearch") for m in metrics if m[0] == "ImageSearch")
    # one line per failure reason, whatever reasons the embedder reports
    assert expressions == [
        'SEARCH(\'{ImageSearch,reason,service} MetricName="PermanentFailuresByReason" '
        "service=\"imgsearch\"', 'Sum', 300)"
    ]


# --------------------------------------------------------------------------- outputs


def test_outputs_name_every_resource_a_user_needs(default: Synth, ids: dict[str, str]) -> None:
    outputs = default.raw["Outputs"]
    assert set(outputs) == set(OUTPUT_KEYS)
    assert outputs["QueueUrl"]["Value"] == {"Ref": ids["queue"]}
    assert outputs["DlqUrl"]["Value"] == {"Ref": ids["dlq"]}
    assert outputs["SourceBucketName"]["Value"] == {"Ref": ids["source"]}
    assert outputs["InventoryBucketName"]["Value"] == {"Ref": ids["inventory"]}
    assert outputs["IndexArn"]["Value"] == {"Fn::GetAtt": [ids["index"], "IndexArn"]}
    assert outputs["VectorBucketName"]["Value"] == "imgsearch-vectors"
    assert outputs["IndexName"]["Value"] == "images"
    assert outputs["EmbedderFunctionName"]["Value"] == {"Ref": ids["embedder"]}
    assert outputs["RouterFunctionName"]["Value"] == {"Ref": ids["router"]}
    assert "dashboards/dashboard/" in json.dumps(outputs["DashboardUrl"]["Value"])
