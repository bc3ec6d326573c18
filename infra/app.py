"""The CDK app: config from context, the stack, and cdk-nag's AwsSolutions checks.

``app.py`` at the repository root calls :func:`main`; the tests call
:func:`build_app` with the same ``cdk.json`` context, so they check what
``cdk synth`` produces.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import cdk_nag

from imgsearch.config import ConfigError, PipelineConfig
from infra.stack import ImageSearchPipelineStack

CDK_OWN_CONTEXT_KEYS = frozenset({"acknowledged-issue-numbers"})
"""Context keys the CDK CLI writes that carry no ``:`` or ``@`` (those are skipped anyway)."""


def config_from_context(context: Mapping[str, Any]) -> PipelineConfig:
    """The pipeline config from the app's whole context (``cdk.json`` + ``-c key=value``).

    Every key is read, so a typo such as ``-c dimenson=3072`` fails instead of being
    ignored.
    """
    return PipelineConfig.from_mapping(
        {k: v for k, v in context.items() if k not in CDK_OWN_CONTEXT_KEYS}
    )


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[cdk.App, ImageSearchPipelineStack]:
    """The app with its one stack; raises ConfigError on invalid config."""
    app = cdk.App(context=dict(context) if context is not None else None, outdir=outdir)
    cfg = config_from_context(app.node.get_all_context())
    region = cfg.region or os.environ.get("CDK_DEFAULT_REGION")
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    stack = ImageSearchPipelineStack(
        app,
        cfg.stack_name,
        config=cfg,
        env=cdk.Environment(account=account, region=region) if region or account else None,
    )
    # A finding that is not acknowledged (infra/nag.py) fails the synth.
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> int:
    try:
        app, _ = build_app()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0
