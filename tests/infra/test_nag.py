"""cdk-nag's AwsSolutions pack passes, and only on reviewed, explained acknowledgements."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_iam as iam

from infra.app import build_app
from tests.infra.conftest import SynthFn, cdk_context, nag_report

# Each reviewed finding, by the construct it is on (the reasons are in infra/nag.py).
EXPECTED = {
    "ImageSearchPipeline/Pipeline/Functions/Router/Resource": {"AwsSolutions-L1"},
    "ImageSearchPipeline/Pipeline/Functions/Embedder/Resource": {"AwsSolutions-L1"},
    "ImageSearchPipeline/Pipeline/Functions/Search/Resource": {"AwsSolutions-L1"},
    "ImageSearchPipeline/BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
    "/Role/Resource": {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]"
    },
}


# With tracing on, X-Ray's '*' (the default policies hold only what CDK adds; our own
# statements are in separate policies)
XRAY = {
    f"ImageSearchPipeline/Pipeline/Functions/{fn}Role/DefaultPolicy/Resource": {
        "AwsSolutions-IAM5[Resource::*]"
    }
    for fn in ("Router", "Embedder", "Search")
}

EMBEDDER_POLICY = "ImageSearchPipeline/Pipeline/Functions/EmbedderPolicy/Resource"
SEARCH_POLICY = "ImageSearchPipeline/Pipeline/Functions/SearchPolicy/Resource"
SOURCE_OBJECTS = "AwsSolutions-IAM5[Resource::<PipelineBucketsSourceA68F200F.Arn>/*]"


def _acknowledged(report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for violation in report["suppressedViolations"]:
        assert len(violation["reason"]) > 40, violation  # a written reason, not a placeholder
        for construct in violation["violatingConstructs"]:
            found.setdefault(construct["constructPath"], set()).add(violation["ruleName"])
    return found


def test_default_stack_passes_with_only_reviewed_acknowledgements(synth: SynthFn) -> None:
    report = synth().nag_report()
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    assert _acknowledged(report) == {
        **EXPECTED,
        EMBEDDER_POLICY: {SOURCE_OBJECTS},
        SEARCH_POLICY: {SOURCE_OBJECTS},  # the search reads the same images (image_uri, URLs)
    }


def test_tracing_adds_only_the_reviewed_xray_wildcard(synth: SynthFn) -> None:
    report = synth(tracing="true").nag_report()
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    assert _acknowledged(report) == {
        **EXPECTED,
        **XRAY,
        EMBEDDER_POLICY: {SOURCE_OBJECTS},
        SEARCH_POLICY: {SOURCE_OBJECTS},
    }


def test_imported_bucket_stack_passes_with_one_acknowledgement_per_prefix(synth: SynthFn) -> None:
    report = synth(source_bucket_name="my-photos", prefixes="cats/,dogs/").nag_report()
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    acknowledged = _acknowledged(report)
    assert acknowledged[EMBEDDER_POLICY] == {
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::my-photos/cats/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::my-photos/dogs/*]",
    }
    # the AwsCustomResource that sets inventory on the imported bucket
    assert any(path.startswith("ImageSearchPipeline/AWS679f53fac") for path in acknowledged)


@pytest.mark.parametrize("policy", ["own", "default"])
def test_an_unreviewed_wildcard_fails_the_synth(tmp_path: Any, policy: str) -> None:
    """The pack runs at synth and acknowledgements are per finding: a new wildcard fails."""
    app, stack = build_app(cdk_context(), outdir=str(tmp_path))
    functions = stack.pipeline.functions
    statement = iam.PolicyStatement(
        actions=["s3:GetObject"], resources=["arn:aws:s3:::someone-elses-bucket/*"]
    )
    if policy == "own":
        functions.policies["Embedder"].add_statements(statement)
    else:
        functions.embedder.add_to_role_policy(statement)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert [v["ruleName"] for v in nag_report(tmp_path)["violations"]] == [
        "AwsSolutions-IAM5[Resource::arn:aws:s3:::someone-elses-bucket/*]"
    ]
