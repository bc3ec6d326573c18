"""cfn-lint accepts the synthesized templates (what ``make synth`` runs on ``cdk.out``)."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import lint

from tests.infra.conftest import SynthFn


@pytest.mark.parametrize(
    "overrides",
    [{}, {"source_bucket_name": "my-photos", "prefixes": "cats/,dogs/", "dimension": "3072"}],
    ids=["default", "imported-bucket"],
)
def test_cfn_lint_finds_nothing(synth: SynthFn, overrides: dict[str, str]) -> None:
    template = json.dumps(synth(**overrides).raw)
    matches = lint(template, regions=["us-east-1", "eu-central-1"])
    assert [str(m) for m in matches] == []


def test_cfn_lint_would_report_a_broken_template(synth: SynthFn) -> None:
    """The check is live: a wrong property in the same template is reported."""
    raw = json.loads(json.dumps(synth().raw))
    queue = next(r for r in raw["Resources"].values() if r["Type"] == "AWS::SQS::Queue")
    queue["Properties"]["VisibilityTimeout"] = 50_000  # above SQS's 12 hours
    assert [m.rule.id for m in lint(json.dumps(raw))] == ["E3034"]  # number out of range
