"""``imgsearch verify``: compare the bucket with the index, and enqueue repairs with ``--fix``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from scripts.common.console import print_json, render_table
from scripts.common.errors import EXIT_INCOMPLETE, EXIT_OK, CliError
from scripts.imgsearch.context import Context, say
from scripts.ops import verify

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers

DEFAULT_SAMPLE = 200


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("verify", parents=[common], help="compare the bucket with the index")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help=f"check this many random objects and vectors (default {DEFAULT_SAMPLE})",
    )
    scope.add_argument("--all", action="store_true", help="check every object and vector")
    p.add_argument("--fix", action="store_true", help="enqueue upserts/deletes for what is wrong")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --fix, also re-enqueue objects whose last attempt failed permanently",
    )
    p.add_argument("--log-group", help="the embedder's log group (default: from the stack)")
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    sample = None if args.all else args.sample
    if sample is not None and sample < 1:
        raise CliError(f"--sample {sample}: check at least 1 object (or pass --all)")
    if args.retry_failed and not args.fix:
        raise CliError("--retry-failed re-enqueues failed objects: use it with --fix")
    report = verify.verify(
        ctx.cfg,
        s3=ctx.clients("s3"),
        index=ctx.index,
        source_bucket=ctx.source_bucket(),
        sample=sample,
        progress=say if not ctx.json else None,
        failures=ctx.embedder_logs("to tell recorded permanent failures from missing vectors"),
    )
    if args.fix:
        verify.fix(
            ctx.cfg,
            report,
            sqs=ctx.clients("sqs"),
            queue_url=ctx.queue_url(),
            retry_failed=args.retry_failed,
        )
    if ctx.json:
        print_json(report.as_dict())
    else:
        _print_report(report, fixed=args.fix)
    for line in report.notes:
        say(f"note: {line}")
    for line in report.fixes_failed:
        say(f"error: a repair message was not sent: {line}")
    if report.fixes_failed:
        return EXIT_INCOMPLETE
    if not report.clean and not args.fix:
        return EXIT_INCOMPLETE
    return EXIT_OK


def _print_report(report: verify.VerifyReport, *, fixed: bool) -> None:
    print(
        f"checked {report.objects_checked} of {report.objects_listed} indexed object(s) in "
        f"s3://{report.source_bucket} and {report.vectors_checked} vector(s) ({report.mode})"
    )
    counts = report.as_dict()["counts"]
    print(", ".join(f"{kind}: {n}" for kind, n in counts.items()))
    if report.findings:
        rows = [
            {"kind": f.kind, "uri": f.uri, "detail": f.detail + (" (recent)" if f.recent else "")}
            for f in report.findings
        ]
        print(render_table(rows, [("kind", "FINDING"), ("uri", "OBJECT"), ("detail", "DETAIL")]))
    if fixed:
        print(f"enqueued {report.fixes_sent} repair message(s)")
