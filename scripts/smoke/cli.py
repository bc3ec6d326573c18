"""``python -m scripts.smoke``: the end-to-end acceptance of a deployed pipeline.

    python -m scripts.smoke [run]          # the deployment the environment names (local cloud)
    python -m scripts.smoke run --aws      # the smoke stack recorded by `make smoke AWS=1`
    python -m scripts.smoke plan           # record a smoke stack; print its `cdk deploy` args
    python -m scripts.smoke destroy        # remove the recorded smoke stack and what it retains

``run`` prints one line per step (``ok`` / ``FAILED: why``) and exits 1 if one failed.
On an endpoint other than this machine's (i.e. real AWS), it runs only on a stack tagged
as a smoke stack (:mod:`scripts.smoke.stack`). ``make smoke`` / ``make smoke AWS=1`` /
``make smoke-destroy`` call these.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from imgsearch.search import describe_index
from scripts.common.cli import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    Clients,
    add_aws_options,
    clients_from_args,
    config_from_args,
    run_main,
)
from scripts.common.console import note
from scripts.common.deployed_config import given_settings
from scripts.common.deployment import Deployment
from scripts.common.errors import CliError
from scripts.smoke import stack
from scripts.smoke.steps import SmokeRun, StepFailed, estimate_cost_usd

PROG = "smoke"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="End-to-end smoke test of a deployed image search pipeline."
    )
    parser.add_argument(
        "action", nargs="?", default="run", choices=("run", "plan", "destroy"), help="default: run"
    )
    add_aws_options(parser)
    parser.add_argument(
        "--aws", action="store_true", help="run on the smoke stack recorded by `make smoke AWS=1`"
    )
    parser.add_argument("--stack", help="plan: the smoke stack's name (imgsearch-smoke-<id>)")
    parser.add_argument(
        "--record",
        type=Path,
        default=stack.RECORD_FILE,
        help=f"the smoke-stack record (default {stack.RECORD_FILE})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for each change to reach the index (default 180)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: _main(argv), prog=PROG)


def _main(argv: list[str] | None) -> int:
    args, ignored = build_parser().parse_known_args(argv)
    if ignored:  # CDK_ARGS may carry cdk's own options
        note(f"{PROG}: note: ignored (not smoke options): {' '.join(ignored)}")
    record = stack.load_record(args.record)
    if args.action == "plan":
        return _plan(args)
    if args.action == "destroy":
        return _destroy(args, record)
    if args.aws:
        if record is None:
            raise CliError(
                f"--aws: no smoke stack recorded in {args.record}; `make smoke AWS=1` deploys one"
            )
        _apply_record(args, record)
    return _run(args, record if args.aws else None)


def _apply_record(args: argparse.Namespace, record: stack.SmokeRecord) -> None:
    """The recorded names win over any ``-c``: the run must not drift to another stack."""
    args.context = [*args.context, *(f"{k}={v}" for k, v in record.context.items())]
    args.region = args.region or record.region


# --------------------------------------------------------------------------- run


def _run(args: argparse.Namespace, record: stack.SmokeRecord | None) -> int:
    cfg = config_from_args(args)
    clients = clients_from_args(args, cfg)
    endpoints = [
        clients("s3").meta.endpoint_url,
        clients("s3vectors").meta.endpoint_url,
        clients("bedrock-runtime").meta.endpoint_url,
        clients("cloudformation").meta.endpoint_url,
    ]
    local = all(stack.is_loopback(url) for url in endpoints)
    if not local:
        stack.require_smoke_stack(
            clients("cloudformation"),
            cfg.stack_name,
            smoke_id=record.smoke_id if record else None,
        )
    deployment = Deployment(cfg, clients)
    if not deployment.outputs:
        raise CliError(
            f"no readable stack {cfg.stack_name!r} ({'; '.join(deployment.notes) or 'no outputs'})"
            ": the smoke test needs a deployed stack (make local, or make smoke AWS=1)"
        )
    # Select, embed and name as the deployed Lambdas do (prefixes, model, index...).
    cfg = deployment.settle(given_settings(args))
    for line in deployment.notes:
        note(f"{PROG}: note: {line}")
    bucket = deployment.source_bucket()
    if not bucket:
        raise CliError(f"stack {cfg.stack_name!r} names no source bucket (SourceBucketName)")
    index = describe_index(
        clients("s3vectors"), deployment.vector_bucket(), deployment.index_name()
    )
    where = "the local cloud" if local else f"stack {cfg.stack_name} in {clients.region}"
    print(f"smoke: on {where}: s3://{bucket}/, index {index.vector_bucket}/{index.index}")
    started = time.monotonic()
    run = SmokeRun(
        cfg,
        s3=clients("s3"),
        s3vectors=clients("s3vectors"),
        bedrock=clients("bedrock-runtime", max_attempts=1),
        source_bucket=bucket,
        index=index,
        verify_all=lambda: _verify_all(args),
        timeout=args.timeout,
    )
    report = run.run()
    elapsed = time.monotonic() - started
    failed = [s.name for s in report.steps if not s.ok]
    cost = "" if local else f"; about ${estimate_cost_usd(cfg, report.usage):.4f} of usage"
    if failed:
        print(f"smoke: FAILED ({', '.join(failed)}) in {elapsed:.0f} s{cost}")
        return EXIT_INCOMPLETE
    print(f"smoke: passed, {len(report.steps)} steps in {elapsed:.0f} s{cost}")
    return EXIT_OK


def _verify_all(args: argparse.Namespace) -> str:
    """``imgsearch verify --all`` as the operator runs it (a subprocess, same options)."""
    command = [sys.executable, "-m", "scripts.imgsearch", "verify", "--all", "--output", "json"]
    for flag in ("region", "profile", "endpoint_url", "cdk_json"):
        value = getattr(args, flag)
        if value:
            command += [f"--{flag.replace('_', '-')}", value]
    for pair in args.context:
        command += ["-c", pair]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    try:
        counts = json.loads(done.stdout)["counts"]
    except (ValueError, KeyError, TypeError):
        error = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise StepFailed(f"imgsearch verify --all: {error}") from None
    summary = ", ".join(f"{kind} {n}" for kind, n in counts.items())
    if done.returncode != EXIT_OK or any(counts.values()):
        raise StepFailed(f"imgsearch verify --all exit {done.returncode}: {summary}")
    return f"index matches the bucket ({summary})"


# --------------------------------------------------------------------------- plan / destroy


def _aws_clients(args: argparse.Namespace, region: str | None = None) -> Clients:
    args.region = args.region or region
    return clients_from_args(args, config_from_args(args))


def _plan(args: argparse.Namespace) -> int:
    clients = _aws_clients(args)
    record = stack.plan(
        clients("cloudformation"), stack_name=args.stack, region=clients.region, path=args.record
    )
    note(f"{PROG}: smoke stack {record.stack_name} (recorded in {args.record})")
    print(" ".join(shlex.quote(a) for a in record.cdk_args()))
    return EXIT_OK


def _destroy(args: argparse.Namespace, record: stack.SmokeRecord | None) -> int:
    if record is None:
        raise CliError(
            f"no smoke stack recorded in {args.record}: smoke-destroy removes only a stack "
            "that `make smoke AWS=1` created, and nothing else"
        )
    clients = _aws_clients(args, record.region)
    stack.destroy(
        record,
        cloudformation=clients("cloudformation"),
        s3=clients("s3"),
        s3vectors=clients("s3vectors"),
        progress=lambda m: note(f"{PROG}: {m}"),
        path=args.record,
    )
    print(f"smoke: removed stack {record.stack_name} and the buckets it retained")
    return EXIT_OK


__all__ = ["build_parser", "main"]
