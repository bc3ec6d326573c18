"""Synthesize the stack the way ``cdk synth`` does, once per distinct config.

Each synth takes a few seconds (jsii, bundling, cdk-nag), so templates are cached for
the session by their context overrides: every module asking for the default stack
shares one synth. The context starts from the repository's ``cdk.json``, feature
flags included, so the tests check the template users deploy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk.assertions import Template

from infra.app import build_app
from infra.stack import ImageSearchPipelineStack

REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """``cdk.json``'s context with ``-c key=value``-style overrides on top."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return {**context, **overrides}


@dataclass(frozen=True)
class Synth:
    stack: ImageSearchPipelineStack
    template: Template
    raw: dict[str, Any]
    outdir: Path

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.raw["Resources"].items() if v["Type"] == type_}

    def one(self, type_: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
        """The one resource of ``type_`` whose logical id starts with ``prefix``."""
        found = [(k, v) for k, v in self.resources(type_).items() if k.startswith(prefix)]
        assert len(found) == 1, f"expected one {type_} {prefix!r}, found {[k for k, _ in found]}"
        return found[0]

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))

    def nag_report(self) -> dict[str, Any]:
        return nag_report(self.outdir)

    def granted(self, function_id: str) -> set[tuple[str, str]]:
        """Every (action, resource) pair the function's role is granted, over all its
        policies; resources as sorted JSON (compare with :func:`getatt`)."""
        role = self.raw["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        pairs: set[tuple[str, str]] = set()
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role} not in policy["Properties"]["Roles"]:
                continue
            for st in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert st["Effect"] == "Allow"
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                pairs |= {(a, json.dumps(r, sort_keys=True)) for a in actions for r in resources}
        return pairs


def getatt(logical_id: str, attribute: str = "Arn") -> str:
    """``{"Fn::GetAtt": [...]}`` as :meth:`Synth.granted` spells resources."""
    return json.dumps({"Fn::GetAtt": [logical_id, attribute]}, sort_keys=True)


def nag_report(outdir: Path) -> dict[str, Any]:
    """cdk-nag's part of the validation report CDK writes next to the templates."""
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert isinstance(nag, dict)
    return nag


SynthFn = Callable[..., Synth]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthFn]:
    cache: dict[str, Synth] = {}

    def run(**overrides: Any) -> Synth:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            outdir = tmp_path_factory.mktemp("cdk.out")
            app, stack = build_app(cdk_context(**overrides), outdir=str(outdir))
            assembly = app.synth()
            raw = assembly.get_stack_by_name(stack.stack_name).template
            cache[key] = Synth(stack, Template.from_json(raw), raw, outdir)
        return cache[key]

    yield run
