"""A cross-Region inference profile as ``model_id``: the grants the Bedrock docs require.

Bedrock authorises an invocation through a profile twice: on the profile in the source
Region, and on the foundation model in whichever destination Region serves the request
("Prerequisites for inference profiles"). A plain model id keeps the one regional grant.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, SynthFn

MARENGO_EU = "eu.twelvelabs.marengo-embed-3-0-v1:0"
MARENGO = "twelvelabs.marengo-embed-3-0-v1:0"
PROFILE_ARN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":bedrock:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            f":inference-profile/{MARENGO_EU}",
        ],
    ]
}


@pytest.fixture(scope="module")
def profile(synth: SynthFn) -> Synth:
    return synth(model_id=MARENGO_EU, dimension="512")


def _bedrock_statements(s: Synth) -> list[dict[str, Any]]:
    role = s.logical_id(s.stack.pipeline.functions.embedder.role)
    return [
        st
        for policy in s.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("bedrock:") for a in _list(st["Action"]))
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_a_profile_grants_the_profile_and_its_model_in_every_destination_region(
    profile: Synth,
) -> None:
    statements = _bedrock_statements(profile)
    assert [st.get("Sid") for st in statements] == [
        "InvokeInferenceProfile",
        "InvokeModelThroughProfile",
    ]
    through_profile, model = statements
    assert through_profile == {
        "Sid": "InvokeInferenceProfile",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": PROFILE_ARN,
    }
    # Any Region the profile routes to (the set changes as AWS adds Regions), but only
    # this model, and only when the call came through this profile.
    assert model == {
        "Sid": "InvokeModelThroughProfile",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, f":bedrock:*::foundation-model/{MARENGO}"],
            ]
        },
        "Condition": {"ArnEquals": {"bedrock:InferenceProfileArn": PROFILE_ARN}},
    }


def test_the_lambdas_are_told_the_profile_id_to_invoke(profile: Synth) -> None:
    p = profile.stack.pipeline
    for fn in (p.functions.router, p.functions.embedder):
        variables = profile.raw["Resources"][profile.logical_id(fn)]["Properties"]["Environment"]
        assert variables["Variables"]["IMGSEARCH_MODEL_ID"] == MARENGO_EU


def test_a_plain_model_id_keeps_the_one_regional_grant(synth: SynthFn) -> None:
    # its resource (the model in this Region) is asserted in test_stack
    statements = _bedrock_statements(synth())
    assert [(st.get("Sid"), "Condition" in st) for st in statements] == [
        ("InvokeEmbeddingModel", False)
    ]
    assert not any("inference-profile" in str(st["Resource"]) for st in statements)


def test_the_profile_stack_passes_cdk_nag_with_the_reviewed_model_wildcard(
    profile: Synth,
) -> None:
    report = profile.nag_report()
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    on_policy = {
        v["ruleName"]
        for v in report["suppressedViolations"]
        for c in v["violatingConstructs"]
        if c["constructPath"] == "ImageSearchPipeline/Pipeline/Functions/EmbedderPolicy/Resource"
    }
    assert (
        f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{MARENGO}]"
        in on_policy
    )
