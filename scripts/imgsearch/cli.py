"""``imgsearch``: search the index and operate the pipeline, without writing boto3 by hand.

    imgsearch search --text "wind turbine" [--k 5] [--where prefix=05/] [--output json]
    imgsearch search --image ./query.jpg | --image s3://bucket/key.jpg
    imgsearch get s3://bucket/key.jpg
    imgsearch delete s3://bucket/key.jpg | --prefix s3://bucket/folder/ [--yes]
    imgsearch status [--watch 5]
    imgsearch dlq list | dlq redrive [--wait]
    imgsearch verify [--sample 200 | --all] [--fix]
    imgsearch serve [--port 8000]

Options work like the AWS CLI's (``--region``, ``--profile``, ``--endpoint-url``,
``--output json|table``) and may follow the subcommand. Resource names come from the
deployed stack's CloudFormation outputs, else from the config (``cdk.json`` + ``-c``),
else from explicit options (``--vector-bucket``...). Every failure is one line on
stderr and a non-zero exit: 2 for bad input or environment, 1 for "done, but not
everything" (e.g. a vector that is not there, a verify that found problems).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any, NoReturn

from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.vectors import VectorIndex
from scripts.common.cli import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_OK,
    Clients,
    CliError,
    add_aws_options,
    clients_from_args,
    config_from_args,
    run_main,
)
from scripts.common.console import (
    OUTPUT_FORMATS,
    human_bytes,
    note,
    print_json,
    render_pairs,
    render_table,
)
from scripts.common.deployment import Resources
from scripts.ops import deletion, dlq, status, verify, where
from scripts.ops.search import (
    DEFAULT_K,
    IndexInfo,
    Searcher,
    SearchResult,
    describe_index,
    parse_s3_uri,
)

PROG = "imgsearch"
DEFAULT_PORT = 8000
DEFAULT_DLQ_LIST = 20
DEFAULT_SAMPLE = 200
watch_sleep = time.sleep
"""How ``status --watch`` waits between refreshes (tests replace it)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to get help), like every error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


# --------------------------------------------------------------------------- context


class Context:
    """What one command needs: config, clients and resource names, built on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg: PipelineConfig = config_from_args(args)
        self.clients: Clients = clients_from_args(args, self.cfg)
        self.resources = Resources(self.cfg, self.clients)
        self._notes_shown = 0

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.clients(service, **kwargs)

    def show_notes(self) -> None:
        for line in self.resources.notes[self._notes_shown :]:
            note(f"{PROG}: note: {line}")
        self._notes_shown = len(self.resources.notes)

    @cached_property
    def index_info(self) -> IndexInfo:
        info = describe_index(
            self.client("s3vectors"),
            self.resources.vector_bucket(self.args.vector_bucket),
            self.resources.index_name(self.args.index),
        )
        self.show_notes()
        return info

    @cached_property
    def index(self) -> VectorIndex:
        info = self.index_info
        return VectorIndex(
            self.client("s3vectors"),
            info.vector_bucket,
            info.index,
            dimension=info.dimension,
            distance_metric=info.distance_metric,
        )

    def searcher(self) -> Searcher:
        return Searcher(
            self.cfg,
            bedrock=self.client("bedrock-runtime", max_attempts=1),
            s3vectors=self.client("s3vectors"),
            s3=self.client("s3"),
            index=self.index_info,
        )

    def queue_url(self) -> str:
        url = self.resources.queue_url(self.args.queue_url)
        self.show_notes()
        return url

    def dlq_url(self) -> str:
        url = self.resources.dlq_url(self.args.dlq_url)
        self.show_notes()
        return url

    def source_bucket(self) -> str:
        bucket = self.resources.source_bucket(self.args.source_bucket)
        self.show_notes()
        if not bucket:
            raise CliError(
                "no source bucket: the stack's SourceBucketName output is not readable and "
                "config 'source_bucket_name' is empty; pass --source-bucket"
            )
        return bucket

    @property
    def json(self) -> bool:
        return bool(self.args.output == "json")


# --------------------------------------------------------------------------- commands


def cmd_search(ctx: Context) -> int:
    args = ctx.args
    filter_doc = where.combine(args.where or (), args.filter)
    searcher = ctx.searcher()
    if args.text is not None:
        result = searcher.text(args.text, k=args.k, filter=filter_doc)
    else:
        result = searcher.image_at(args.image, k=args.k, filter=filter_doc)
    print_search(result, ctx.json)
    return EXIT_OK


def print_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    if not result.hits:
        note(f"{PROG}: no results match the filter {result.query.get('filter')}")
        return
    rows = [
        {
            "rank": h.rank,
            "distance": h.distance,
            "uri": h.uri,
            "size": human_bytes(h.size),
            "dimensions": h.dimensions,
        }
        for h in result.hits
    ]
    columns = [
        ("rank", "RANK"),
        ("distance", "DISTANCE"),
        ("uri", "SOURCE"),
        ("size", "SIZE"),
        ("dimensions", "WxH"),
    ]
    print(render_table(rows, columns))


def cmd_get(ctx: Context) -> int:
    bucket, key = _object_uri(ctx.args.uri)
    vkey = vector_key(bucket, key)
    found = ctx.index.get([vkey], return_data=ctx.args.with_data).get(vkey)
    if found is None:
        raise CliError(
            f"no vector for {ctx.args.uri} (vector key {vkey}): not indexed yet, failed, or "
            "deleted; `imgsearch status` and `imgsearch dlq list` say which",
            EXIT_INCOMPLETE,
        )
    if ctx.json:
        print_json({"uri": ctx.args.uri, **found})
        return EXIT_OK
    metadata = found.get("metadata") or {}
    pairs: list[tuple[str, Any]] = [("uri", ctx.args.uri), ("vector key", vkey)]
    pairs += [(name, metadata[name]) for name in sorted(metadata)]
    if "data" in found:
        data = found["data"] or []
        preview = ", ".join(f"{x:.4f}" for x in data[:4])
        pairs.append(("data", f"[{preview}, ...] ({len(data)} dimensions)"))
    print(render_pairs(pairs))
    return EXIT_OK


def cmd_delete(ctx: Context) -> int:
    args = ctx.args
    if (args.uri is None) == (args.prefix is None):
        raise CliError("delete: give either s3://bucket/key or --prefix s3://bucket/prefix/")
    s3 = ctx.client("s3")
    if args.uri is not None:
        bucket, key = _object_uri(args.uri)
        vkey = vector_key(bucket, key)
        existed = vkey in ctx.index.get([vkey])
        if existed:
            ctx.index.delete([vkey])
        still_there = deletion.object_exists(s3, bucket, key)
        result = {
            "uri": args.uri,
            "vector_key": vkey,
            "deleted": existed,
            "object_exists": still_there,
        }
        if ctx.json:
            print_json(result)
        else:
            print(
                f"deleted the vector of {args.uri}"
                if existed
                else f"no vector for {args.uri}: nothing to delete"
            )
        if still_there:
            note(
                f"{PROG}: note: the object still exists; its next upload event or a backfill "
                "indexes it again (delete the object to keep it out of the index)"
            )
        return EXIT_OK
    bucket, prefix = parse_s3_uri(args.prefix, "--prefix")
    plan = deletion.plan_prefix(s3, ctx.index, bucket, prefix, scan_index=args.scan_index)
    if plan.count == 0:
        message = (
            f"no vectors under s3://{bucket}/{prefix} ({plan.objects_listed} objects listed"
            + ("" if args.scan_index else "; --scan-index also finds vectors of deleted objects")
            + ")"
        )
        if ctx.json:
            print_json({"prefix": args.prefix, "deleted": 0, "objects_listed": plan.objects_listed})
        else:
            print(message)
        return EXIT_OK
    _confirm(
        f"delete {plan.count} vector(s) of objects under s3://{bucket}/{prefix} from index "
        f"{ctx.index.index!r}?",
        args.yes,
    )
    deleted = deletion.execute(ctx.index, plan)
    if ctx.json:
        print_json(
            {
                "prefix": args.prefix,
                "deleted": deleted,
                "objects_listed": plan.objects_listed,
                "found_by_scan": plan.found_by_scan,
                "uris": sorted(plan.uris.values()),
            }
        )
    else:
        print(f"deleted {deleted} vector(s) under s3://{bucket}/{prefix}")
    return EXIT_OK


def _confirm(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Not confirmed: pass --yes to confirm without a terminal")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled: nothing was deleted", EXIT_INCOMPLETE)


def _object_uri(text: str) -> tuple[str, str]:
    bucket, key = parse_s3_uri(text)
    if not key or key.endswith("/"):
        raise CliError(
            f"{text!r}: name one object, e.g. s3://{bucket}/photos/cat.jpg (or use --prefix)"
        )
    return bucket, key


def collect_status(ctx: Context) -> status.Status:
    return status.collect(
        ctx.cfg,
        sqs=ctx.client("sqs"),
        cloudwatch=ctx.client("cloudwatch"),
        queue_url=ctx.queue_url(),
        dlq_url=ctx.dlq_url(),
    )


def cmd_status(ctx: Context) -> int:
    interval = ctx.args.watch
    if interval is None:
        current = collect_status(ctx)
        print_json(current.as_dict()) if ctx.json else print(current.render())
        return EXIT_OK
    if interval <= 0:
        raise CliError(f"--watch {interval}: give the refresh interval in seconds, e.g. --watch 5")
    try:
        while True:
            current = collect_status(ctx)
            if ctx.json:
                print_json(current.as_dict())
            else:
                if sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                print(f"every {interval:g}s (Ctrl-C to stop)\n{current.render()}\n")
            sys.stdout.flush()
            watch_sleep(interval)
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_dlq(ctx: Context) -> int:
    if ctx.args.dlq_command == "list":
        return _dlq_list(ctx)
    return _dlq_redrive(ctx)


def _dlq_list(ctx: Context) -> int:
    if ctx.args.max < 1:
        raise CliError(f"--max {ctx.args.max}: list at least 1 message")
    url = ctx.dlq_url()
    lookup = _embedder_logs(ctx, "to see why messages failed")
    listing = dlq.list_dlq(
        sqs=ctx.client("sqs"),
        s3=ctx.client("s3"),
        index=ctx.index,
        logs=lookup,
        dlq_url=url,
        limit=ctx.args.max,
    )
    if ctx.json:
        print_json(listing.as_dict())
    elif not listing.entries:
        print(f"the dead-letter queue {url.rsplit('/', 1)[-1]} is empty")
    else:
        blocks = []
        for e in listing.entries:
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
            blocks.append(render_pairs(pairs))
        print(f"{listing.depth} message(s) in {url.rsplit('/', 1)[-1]}\n")
        print("\n\n".join(blocks))
    for line in listing.notes:
        note(f"{PROG}: note: {line}")
    return EXIT_OK


def _dlq_redrive(ctx: Context) -> int:
    args = ctx.args
    if args.max is not None and args.max < 1:
        raise CliError(f"--max {args.max}: move at least 1 message")
    dlq_url, queue_url = ctx.dlq_url(), ctx.queue_url()
    sqs = ctx.client("sqs")
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
        progress=(lambda m: note(f"{PROG}: {m}")) if not ctx.json else None,
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
        note(f"{PROG}: note: {line}")
    for line in report.errors:
        note(f"{PROG}: error: {line}")
    return EXIT_INCOMPLETE if report.failed or report.errors else EXIT_OK


def _embedder_logs(ctx: Context, why: str) -> dlq.LogLookup:
    """The embedder's CloudWatch Logs (``--log-group``, else from the stack)."""
    log_group = ctx.args.log_group or dlq.embedder_log_group(
        ctx.client("lambda"), ctx.resources.embedder_function()
    )
    if log_group is None:
        note(
            f"{PROG}: note: the embedder's function name is unknown (no stack output "
            f"EmbedderFunctionName); pass --log-group {why}"
        )
    return dlq.LogLookup(ctx.client("logs"), log_group, lambda m: note(f"{PROG}: note: {m}"))


def cmd_verify(ctx: Context) -> int:
    args = ctx.args
    sample = None if args.all else args.sample
    if sample is not None and sample < 1:
        raise CliError(f"--sample {sample}: check at least 1 object (or pass --all)")
    if args.retry_failed and not args.fix:
        raise CliError("--retry-failed re-enqueues failed objects: use it with --fix")
    report = verify.verify(
        ctx.cfg,
        s3=ctx.client("s3"),
        index=ctx.index,
        source_bucket=ctx.source_bucket(),
        sample=sample,
        progress=(lambda m: note(f"{PROG}: {m}")) if not ctx.json else None,
        failures=_embedder_logs(ctx, "to tell recorded permanent failures from missing vectors"),
    )
    if args.fix:
        verify.fix(
            ctx.cfg,
            report,
            sqs=ctx.client("sqs"),
            queue_url=ctx.queue_url(),
            retry_failed=args.retry_failed,
        )
    if ctx.json:
        print_json(report.as_dict())
    else:
        print(
            f"checked {report.objects_checked} of {report.objects_listed} indexed object(s) in "
            f"s3://{report.source_bucket} and {report.vectors_checked} vector(s) ({report.mode})"
        )
        counts = report.as_dict()["counts"]
        print(", ".join(f"{kind}: {n}" for kind, n in counts.items()))
        if report.findings:
            rows = [
                {
                    "kind": f.kind,
                    "uri": f.uri,
                    "detail": f.detail + (" (recent)" if f.recent else ""),
                }
                for f in report.findings
            ]
            print(
                render_table(rows, [("kind", "FINDING"), ("uri", "OBJECT"), ("detail", "DETAIL")])
            )
        if args.fix:
            print(f"enqueued {report.fixes_sent} repair message(s)")
    for line in report.notes:
        note(f"{PROG}: note: {line}")
    for line in report.fixes_failed:
        note(f"{PROG}: error: a repair message was not sent: {line}")
    if report.fixes_failed:
        return EXIT_INCOMPLETE
    if not report.clean and not args.fix:
        return EXIT_INCOMPLETE
    return EXIT_OK


def cmd_serve(ctx: Context) -> int:
    import socket

    import uvicorn

    from scripts.web.app import WebContext, create_app

    port = ctx.args.port
    if not 0 <= port <= 65535:
        raise CliError(f"--port {port}: use 1..65535 (0 picks a free port)")
    web = WebContext.from_cli(ctx)
    app = create_app(web)
    # Bind first, so a busy port is one clear error before anything is printed.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise CliError(
            f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror})"
        ) from exc
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    note(f"{PROG}: serving index {web.describe()} on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    add_aws_options(common)
    names = common.add_argument_group(
        "resources (default: the stack's CloudFormation outputs, then the config)"
    )
    names.add_argument("--vector-bucket", help="S3 Vectors bucket name")
    names.add_argument("--index", help="S3 Vectors index name")
    names.add_argument("--source-bucket", help="the bucket the pipeline indexes")
    names.add_argument("--queue-url", help="the embedding queue's URL")
    names.add_argument("--dlq-url", help="the embedding queue's dead-letter queue URL")
    common.add_argument(
        "--output", choices=OUTPUT_FORMATS, default="table", help="table (default) or json"
    )

    parser = _Parser(
        prog=PROG,
        description="Search the image index and operate the ingestion pipeline.",
        epilog="Run `imgsearch COMMAND --help` for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("search", parents=[common], help="text or image search")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help='what to look for, e.g. "wind turbine"')
    what.add_argument("--image", help="an image to find similar ones: a local path or s3:// URI")
    p.add_argument(
        "--k",
        type=int,
        default=DEFAULT_K,
        help=f"number of results (default {DEFAULT_K}, at most {LIMITS.query_top_k_max})",
    )
    p.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="metadata filter: prefix=05/, format!=gif, width>=1024 (repeatable, ANDed)",
    )
    p.add_argument("--filter", help='an S3 Vectors filter as JSON, e.g. \'{"format": "png"}\'')
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("get", parents=[common], help="a vector's metadata, by its object's URI")
    p.add_argument("uri", help="s3://bucket/key of the source image")
    p.add_argument("--with-data", action="store_true", help="also fetch the vector itself")
    p.set_defaults(run=cmd_get)

    p = sub.add_parser("delete", parents=[common], help="delete vectors by object URI or prefix")
    p.add_argument("uri", nargs="?", help="s3://bucket/key of the source image")
    p.add_argument(
        "--prefix", metavar="S3_URI", help="every vector of objects under s3://bucket/prefix/"
    )
    p.add_argument(
        "--scan-index",
        action="store_true",
        help="with --prefix: also walk the index for vectors of objects already deleted",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=cmd_delete)

    p = sub.add_parser("status", parents=[common], help="queue, DLQ, throughput and ETA")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS")
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("dlq", help="the embedding queue's dead-letter queue")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    q = dsub.add_parser("list", parents=[common], help="show failed messages and why")
    q.add_argument(
        "--max",
        type=int,
        default=DEFAULT_DLQ_LIST,
        help=f"at most this many (default {DEFAULT_DLQ_LIST})",
    )
    q.add_argument("--log-group", help="the embedder's log group (default: from the stack)")
    q.set_defaults(run=cmd_dlq)
    q = dsub.add_parser("redrive", parents=[common], help="move failed messages back to the queue")
    q.add_argument("--max", type=int, help="move at most this many (by receive-send-delete)")
    q.add_argument("--rate", type=int, help="messages per second for SQS's move task")
    q.add_argument("--wait", action="store_true", help="wait until SQS's move task finishes")
    q.set_defaults(run=cmd_dlq)

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
    p.set_defaults(run=cmd_verify)

    p = sub.add_parser("serve", parents=[common], help="the search web page on 127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.set_defaults(run=cmd_serve)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    ctx = Context(args)
    code: int = args.run(ctx)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    try:
        return run_main(lambda: _main(argv), prog=PROG)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("IMGSEARCH_DEBUG"):
            raise
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(set IMGSEARCH_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
