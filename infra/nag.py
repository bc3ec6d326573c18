"""cdk-nag AwsSolutions findings that were reviewed and accepted, each with its reason.

cdk-nag 3 runs as a CDK validation plugin (``infra/app.py``): any finding not
acknowledged here fails ``cdk synth``. Each acknowledgement names one finding
(``AwsSolutions-IAM5[Resource::...]`` for one wildcard resource) on one construct,
so a new wildcard elsewhere is still reported.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

from infra.functions import model_arn_in_any_region
from infra.pipeline import ImageSearchPipeline
from infra.search_api import SearchApi

PACK = "AwsSolutions"
_BASIC_EXECUTION_ROLE = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)
_CDK_SINGLETONS = {
    "BucketNotificationsHandler": (
        "CDK's own handler that writes the source bucket's notification configuration "
        "(CloudFormation cannot, without a circular dependency on the router). Its role "
        "is created by CDK and not configurable; the managed policy only lets it write "
        "its own logs."
    ),
    "AWS679f53fac002430cb0da5b7982bd2287": (
        "CDK's AwsCustomResource provider, which sets S3 Inventory on the imported "
        "source bucket. Its role is created by CDK and not configurable; the managed "
        "policy only lets it write its own logs."
    ),
}
_RUNTIME_REASON = (
    "The Lambdas run Python 3.13 on purpose: the dependencies are built for it "
    "(infra/lambda_deps.py) and the code is tested on it. Moving to a newer runtime "
    "is a deliberate upgrade of the build target, not a default to follow."
)
_XRAY_REASON = (
    "Active tracing (Powertools Tracer) needs xray:PutTraceSegments and "
    "xray:PutTelemetryRecords, which support no resource-level permissions: '*' is the "
    "only resource AWS accepts."
)
_MODEL_REGIONS_REASON = (
    "Invoking the model through a cross-Region inference profile: Bedrock also authorises "
    "the foundation model in the destination Region that serves each call, and that set of "
    "Regions changes as AWS adds them. The wildcard is the Region only (one model), and the "
    "statement's bedrock:InferenceProfileArn condition allows it only through this profile."
)
_OBJECTS_REASON = (
    "Read access to the images under one configured prefix of the source bucket: the "
    "wildcard covers the object keys below that prefix and nothing else."
)


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(construct).acknowledge(
        cdk.Acknowledgment(id=f"{PACK}::{PACK}-{finding}", reason=reason)
    )


def suppress_reviewed_findings(
    stack: cdk.Stack, pipeline: ImageSearchPipeline, search_api: SearchApi | None = None
) -> None:
    functions = pipeline.functions
    searching = [search_api.function] if search_api else []
    for fn in (functions.router, functions.embedder, *searching):
        acknowledge(fn, "L1", _RUNTIME_REASON)
        # The role's default policy holds only what CDK adds (X-Ray, event source, DLQ);
        # our own statements are in a separate policy with no acknowledgement.
        assert fn.role is not None
        if pipeline.config.tracing:  # X-Ray's '*' is there only when tracing is on
            acknowledge(fn.role.node.find_child("DefaultPolicy"), "IAM5[Resource::*]", _XRAY_REASON)
    readers = [functions.policies["Embedder"]]
    if search_api:
        readers.append(functions.policies["Search"])
    for policy in readers:
        for prefix in pipeline.config.prefixes:
            objects = pipeline.buckets.source_bucket.arn_for_objects(f"{prefix}*")
            acknowledge(
                policy, f"IAM5[Resource::{_nag_string(stack.resolve(objects))}]", _OBJECTS_REASON
            )
        if pipeline.config.model_ref.is_profile:
            model = model_arn_in_any_region(stack, pipeline.config.model_ref.base_id)
            finding = f"IAM5[Resource::{_nag_string(stack.resolve(model))}]"
            acknowledge(policy, finding, _MODEL_REGIONS_REASON)
    for name, reason in _CDK_SINGLETONS.items():
        for child in stack.node.children:
            if child.node.id.startswith(name):
                acknowledge(child, f"IAM4[{_BASIC_EXECUTION_ROLE}]", reason)


def _nag_string(value: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag names it in a finding."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        [(fn, arg)] = value.items()
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(_nag_string(p) for p in parts)
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Ref":
            return f"<{arg}>"
    raise ValueError(f"cannot name {value!r} as cdk-nag does")
