"""``imgsearch dlq list | redrive``: why messages failed, and sending them back to the queue."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from scripts.common.console import print_json, render_pairs
from scripts.common.errors import EXIT_INCOMPLETE, EXIT_OK, CliError
from scripts.imgsearch.context import Context, say
from scripts.ops import dlq

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers

DEFAULT_LIST = 20


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dlq", help="the embedding queue's dead-letter queue")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    q = dsub.add_parser("list", parents=[common], help="show failed messages and why")
    q.add_argument(
        "--max",
        type=int,
        default=DEFAULT_LIST,
        help=f"at most this many (default {DEFAULT_LIST})",
    )
    q.add_argument("--log-group", help="the embedder's log group (default: from the stack)")
    q.set_defaults(run=run_list)
    q = dsub.add_parser("redrive", parents=[common], help="move failed messages back to the queue")
    q.add_argument("--max", type=int, help="move at most this many (by receive-send-delete)")
    q.add_argument("--rate", type=int, help="messages per second for SQS's move task")
    q.add_argument("--wait", action="store_true", help="wait until SQS's move task finishes")
    q.set_defaults(run=run_redrive)


def run_list(ctx: Context) -> int:
    if ctx.args.max < 1:
        raise CliError(f"--max {ctx.args.max}: list at least 1 message")
    url = ctx.dlq_url()
    lookup = ctx.embedder_logs("to see why messages failed")
    listing = dlq.list_dlq(
        sqs=ctx.clients("sqs"),
        s3=ctx.clients("s3"),
        index=ctx.index,
        logs=lookup,
        dlq_url=url,
        limit=ctx.args.max,
    )
    name = url.rsplit("/", 1)[-1]
    if ctx.json:
        print_json(listing.as_dict())
    elif not listing.entries:
        print(f"the dead-letter queue {name} is empty")
    else:
        print(f"{listing.depth} message(s) in {name}\n")
        print("\n\n".join(_entry_block(e) for e in listing.entries))
    for line in listing.notes:
        say(f"note: {line}")
    return EXIT_OK


def _entry_block(e: dlq.DlqEntry) -> str:
    pairs: list[tuple[str, Any]] = [
        ("message", e.message_id),
        ("object", e.uri or "-"),
        ("kind", e.kind),
        ("group", e.group_id),
        ("receive count", e.receive_count),
        ("sent", e.sent_at),
        ("why", e.why),
        ("body", e.body),
    ]
    if e.last_error is not None:
        pairs.append(("failed at", e.last_error.time))
    if e.uri:
        pairs.append(("now", f"object {e.object_state}, vector {e.vector_state}"))
    return render_pairs(pairs)


def run_redrive(ctx: Context) -> int:
    args = ctx.args
    if args.max is not None and args.max < 1:
        raise CliError(f"--max {args.max}: move at least 1 message")
    dlq_url, queue_url = ctx.dlq_url(), ctx.queue_url()
    sqs = ctx.clients("sqs")
    before = dlq.queue_depth(sqs, dlq_url)
    if before == 0:
        if ctx.json:
            print_json({"method": None, "moved": 0, "dlq_depth": 0})
        else:
            print("the dead-letter queue is empty: nothing to redrive")
        return EXIT_OK
    report = dlq.redrive(
        ctx.cfg,
        sqs=sqs,
        dlq_url=dlq_url,
        queue_url=queue_url,
        max_messages=args.max,
        rate=args.rate,
        wait=args.wait,
        progress=say if not ctx.json else None,
    )
    if ctx.json:
        print_json({**report.as_dict(), "dlq_depth_before": before})
    elif report.method == "move-task":
        state = f"status {report.task_status}"
        if args.wait:
            state += f", {report.moved} moved"
        print(
            f"SQS is moving {before} message(s) from the DLQ back to the queue "
            f"(task {report.task_handle}, {state})"
        )
    else:
        print(f"moved {report.moved} of {before} message(s) from the DLQ back to the queue")
    for line in report.notes:
        say(f"note: {line}")
    for line in report.errors:
        say(f"error: {line}")
    return EXIT_INCOMPLETE if report.failed or report.errors else EXIT_OK
