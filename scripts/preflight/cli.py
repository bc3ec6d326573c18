"""``python -m scripts.preflight``: one line per check, exit 1 if a deploy would fail.

Takes the config as ``cdk deploy`` does (``cdk.json`` context, then ``-c key=value``) so
that ``make preflight CDK_ARGS=...`` checks exactly what ``make deploy CDK_ARGS=...``
would deploy. Other ``cdk`` options in ``CDK_ARGS`` are ignored, with a note.
"""

from __future__ import annotations

import argparse
import sys

from scripts.common.cli import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    add_aws_options,
    clients_from_args,
    config_from_args,
    run_main,
)
from scripts.common.deployment import Deployment
from scripts.preflight.checks import Finding, check_lambda_concurrency, check_model

PROG = "preflight"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Check this account before deploying: Lambda concurrency quota for the "
            "embedder's reservation, and Bedrock model availability and access. Prints one "
            "line per check; exits 1 if the deploy would fail."
        ),
    )
    add_aws_options(parser)
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="do not look for a deployed stack (its embedder's current reservation)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: _main(argv), prog=PROG)


def _main(argv: list[str] | None) -> int:
    args, ignored = build_parser().parse_known_args(argv)
    if ignored:
        note = f"ignored (not preflight options): {' '.join(ignored)}"
        print(f"{PROG}: note: {note}", file=sys.stderr)
    cfg = config_from_args(args)
    clients = clients_from_args(args, cfg)
    region = clients.region or ""
    deployment = Deployment(cfg, clients, use_stack=not args.no_stack)
    findings: list[Finding] = [
        check_lambda_concurrency(clients("lambda"), cfg, deployment.embedder_function()),
        # Clients has no "bedrock" (control plane) overload yet: scripts.common should add it.
        *check_model(clients("bedrock"), cfg, region),
    ]
    print(f"preflight for {cfg.stack_name} in {region} (model {cfg.model_id})")
    for finding in findings:
        print(finding.line())
    return EXIT_INCOMPLETE if any(f.status == "fail" for f in findings) else EXIT_OK
