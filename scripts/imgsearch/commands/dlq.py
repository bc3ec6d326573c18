"""``imgsearch dlq list | redrive``: why messages failed, and sending them back to the queue."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scripts.common.console import print_json, render_pairs
from scripts.common.errors import EXIT_INCOMPLETE, EXIT_OK, CliError
from scripts.imgsearch.context import Context, say
from scripts.ops import dlq, router_dlq
from scripts.ops.dlq import EntryT
from scripts.ops.objects import SourceBucket

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers

DEFAULT_LIST = 20
ROUTER_HELP = (
    "the router's dead-letter queue instead (S3 events it could not enqueue; "
    "--dlq-url then names that queue)"
)


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dlq", help="the dead-letter queues: the embedding queue's, the router's")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    q = dsub.add_parser("list", parents=[common], help="show failed messages and why")
    q.add_argument(
        "--max",
        type=int,
        default=DEFAULT_LIST,
        help=f"at most this many (default {DEFAULT_LIST})",
    )
    q.add_argument("--log-group", help="the embedder's log group (default: from the stack)")
    q.add_argument("--router", action="store_true", help=ROUTER_HELP)
    q.set_defaults(run=run_list)
    q = dsub.add_parser("redrive", parents=[common], help="move failed messages back to the queue")
    q.add_argument("--max", type=int, help="move at most this many (by receive-send-delete)")
    q.add_argument("--rate", type=int, help="messages per second for SQS's move task")
    q.add_argument("--wait", action="store_true", help="wait until SQS's move task finishes")
    q.add_argument("--router", action="store_true", help=ROUTER_HELP)
    q.set_defaults(run=run_redrive)


def run_list(ctx: Context) -> int:
    if ctx.args.max < 1:
        raise CliError(f"--max {ctx.args.max}: list at least 1 message")
    if ctx.args.router:
        return _list_router(ctx)
    url = ctx.dlq_url()
    lookup = ctx.embedder_logs("to see why messages failed")
    source = SourceBucket(
        ctx.deployment.source_bucket(ctx.args.source_bucket), ctx.cfg.source_bucket_owner
    )
    listing = dlq.list_dlq(
        sqs=ctx.clients("sqs"),
        s3=ctx.clients("s3"),
        index=ctx.index,
        logs=lookup,
        dlq_url=url,
        limit=ctx.args.max,
        source=source,
    )
    return _show(ctx, listing, "the dead-letter queue", "message(s)", _entry_block)


def _show(
    ctx: Context,
    listing: dlq.DlqListing[EntryT],
    queue_name: str,
    unit: str,
    block: Callable[[EntryT], str],
) -> int:
    """Print either DLQ's listing: JSON, "empty", or one block per message; then notes."""
    name = listing.queue.rsplit("/", 1)[-1]
    if ctx.json:
        print_json(listing.as_dict())
    elif not listing.entries:
        print(f"{queue_name} {name} is empty")
    else:
        print(f"{listing.depth} {unit} in {name}\n")
        print("\n\n".join(block(e) for e in listing.entries))
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
        ("body", e.body_preview),
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
    if args.router:
        return _redrive_router(ctx)
    dlq_url, queue_url = ctx.dlq_url(), ctx.queue_url()
    sqs = ctx.clients("sqs")
    before = dlq.queue_depth(sqs, dlq_url)
    if before == 0:
        return _nothing_to_redrive(ctx, "the dead-letter queue")
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


# --------------------------------------------------------------------------- --router


def _router_dlq_url(ctx: Context) -> str:
    url = ctx.deployment.router_dlq_url(ctx.args.dlq_url)
    ctx.show_notes()
    return url


def _list_router(ctx: Context) -> int:
    url = _router_dlq_url(ctx)
    listing = router_dlq.list_router_dlq(
        ctx.cfg, sqs=ctx.clients("sqs"), dlq_url=url, limit=ctx.args.max
    )
    return _show(ctx, listing, "the router's dead-letter queue", "event(s)", _router_block)


def _router_block(e: router_dlq.RouterDlqEntry) -> str:
    pairs: list[tuple[str, Any]] = [
        ("message", e.message_id),
        ("objects", "\n".join(e.objects) or "-"),
        ("receive count", e.receive_count),
        ("sent", e.sent_at),
        ("why", e.why),
        ("request id", e.request_id),
    ]
    if e.skipped:
        pairs.append(("skipped", "\n".join(e.skipped)))
    if e.body_error:
        pairs.append(("body", e.body_preview))
    return render_pairs(pairs)


def _nothing_to_redrive(ctx: Context, queue: str) -> int:
    if ctx.json:
        print_json({"method": None, "moved": 0, "dlq_depth": 0})
    else:
        print(f"{queue} is empty: nothing to redrive")
    return EXIT_OK


def _redrive_router(ctx: Context) -> int:
    args = ctx.args
    if args.rate is not None or args.wait:
        raise CliError(
            "--rate and --wait are for SQS's move task; the router's DLQ is redriven by "
            "re-enqueueing its events' objects: drop them (or use --max)"
        )
    dlq_url, queue_url = _router_dlq_url(ctx), ctx.queue_url()
    sqs = ctx.clients("sqs")
    before = dlq.queue_depth(sqs, dlq_url)
    if before == 0:
        return _nothing_to_redrive(ctx, "the router's dead-letter queue")
    report = router_dlq.redrive_router_dlq(
        ctx.cfg,
        sqs=sqs,
        dlq_url=dlq_url,
        queue_url=queue_url,
        max_messages=args.max,
        progress=say if not ctx.json else None,
    )
    if ctx.json:
        print_json({**report.as_dict(), "dlq_depth_before": before})
    else:
        print(
            f"re-enqueued the objects of {report.moved} of {before} event(s) from the "
            f"router's DLQ ({report.messages_sent} message(s) to the queue)"
        )
    for line in report.notes:
        say(f"note: {line}")
    for line in report.errors:
        say(f"error: {line}")
    return EXIT_INCOMPLETE if report.failed or report.errors else EXIT_OK
