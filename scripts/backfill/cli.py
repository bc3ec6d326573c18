"""Enqueue the images already in the source bucket, once, resumably, fast.

Existing objects never produce S3 events; this script reads an S3 Inventory report
(or, for a small bucket without one yet, a ListObjectsV2 listing) and sends each
selected object to the embedding queue with the router's own message, group id and
deduplication id, so a live event and a backfill of the same object version collapse.

    python -m scripts.backfill.cli latest --dry-run
    python -m scripts.backfill.cli s3://inventory-bucket/.../2024-05-01T01-00Z/manifest.json
    python -m scripts.backfill.cli --from-listing s3://photos/2024/

Progress is checkpointed after acknowledged batches (gap-free: see
``scripts.backfill.sender.Watermark``); run the same command again after Ctrl-C or a crash
and it continues where it stopped. The final summary is JSON on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch.aws_errors import error_code
from imgsearch.config import PipelineConfig
from imgsearch.s3uri import is_s3_uri, parse_s3_uri
from imgsearch.selection import KeySelection
from scripts.backfill.checkpoint import Checkpoint, CheckpointStore, open_store
from scripts.backfill.errors import BackfillError
from scripts.backfill.filters import RowFilter, parse_date, parse_size
from scripts.backfill.manifest import S3ClientFactory, load_manifest, resolve_manifest
from scripts.backfill.outcome import PROG, Summary, stop_on_signals
from scripts.backfill.progress import make_reporter
from scripts.backfill.run import DEFAULT_REJECTS, Backfill, Options
from scripts.backfill.sender import RetryPolicy
from scripts.backfill.sources import Source, listing_source, manifest_source
from scripts.common.cli import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    add_aws_options,
    clients_from_args,
    config_from_args,
    run_main,
)
from scripts.common.deployed_config import given_settings
from scripts.common.deployment import QUEUE_MISSING_CODES, Deployment
from scripts.common.errors import describe_aws_error
from scripts.ops.objects import SourceBucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

DEFAULT_CHECKPOINT = "imgsearch-backfill.checkpoint.json"


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Enqueue existing images for embedding from an S3 Inventory report "
        "(or a listing), resumably.",
    )
    p.add_argument(
        "manifest",
        nargs="?",
        help="manifest.json (local path or s3://), a folder of reports (newest wins), "
        "or 'latest' (the stack's inventory for the source bucket)",
    )
    p.add_argument(
        "--from-listing",
        metavar="S3_URI",
        help="no inventory yet: list s3://bucket/prefix with ListObjectsV2 instead",
    )
    sel = p.add_argument_group("what to send")
    sel.add_argument("--bucket", help="the bucket the pipeline indexes (default: stack / config)")
    sel.add_argument("--inventory-bucket", help="where S3 Inventory writes (for 'latest')")
    sel.add_argument(
        "--prefix",
        action="append",
        default=[],
        help="only keys under this prefix (repeatable; default: the config's prefixes)",
    )
    sel.add_argument(
        "--suffix",
        action="append",
        default=[],
        help="only keys ending so, any case (repeatable; default: the config's image suffixes)",
    )
    sel.add_argument(
        "--min-size", type=parse_size, help="skip smaller objects (bytes, or 10K/5MiB)"
    )
    sel.add_argument("--max-size", type=parse_size, help="skip larger objects")
    sel.add_argument(
        "--modified-after", type=parse_date, help="only objects modified after (ISO date)"
    )
    run = p.add_argument_group("how to send")
    run.add_argument("--queue-url", help="the embedding queue (default: stack output / config)")
    run.add_argument(
        "--dry-run", action="store_true", help="count, sample and estimate; send nothing"
    )
    run.add_argument("--samples", type=int, default=5, help="keys to show in a dry run")
    run.add_argument(
        "--latency", type=float, default=0.5, help="seconds per image for the estimate (0.5)"
    )
    run.add_argument(
        "--put-latency", type=float, default=0.0, help="seconds per PutVectors (one per batch)"
    )
    run.add_argument(
        "--bedrock-rpm",
        type=float,
        help="the model's InvokeModel quota in requests per minute (Service Quotas)",
    )
    run.add_argument("--concurrency", type=int, default=16, help="SendMessageBatch calls at once")
    run.add_argument(
        "--max-in-flight", type=int, help="batches sent but not acknowledged (2 x concurrency)"
    )
    run.add_argument("--rate", type=float, help="cap in messages per second")
    run.add_argument(
        "--max-attempts", type=int, default=10, help="tries per entry before giving up"
    )
    run.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        help=f"progress file or s3://bucket/key (default ./{DEFAULT_CHECKPOINT})",
    )
    run.add_argument(
        "--checkpoint-every",
        type=float,
        help="seconds between checkpoint writes (0 = after every acknowledged batch; "
        "default 0 for a file, 5 for S3)",
    )
    run.add_argument("--restart", action="store_true", help="ignore the checkpoint; start over")
    run.add_argument(
        "--no-verify-first",
        dest="verify_first",
        action="store_false",
        help="don't check every data file's MD5 before sending (reads an S3 report once less, "
        "but a damaged file is found only after the files before it were sent)",
    )
    run.add_argument(
        "--rejects", default=DEFAULT_REJECTS, help="where rejected messages go (JSONL)"
    )
    run.add_argument("--work-dir", help="where data files are downloaded (default: system temp)")
    run.add_argument(
        "--progress",
        choices=("auto", "bar", "log", "none"),
        default="auto",
        help="bar on a terminal, log lines otherwise (auto)",
    )
    run.add_argument("--log-interval", type=float, default=10.0, help="seconds between log lines")
    run.add_argument(
        "--no-stack", action="store_true", help="don't read CloudFormation outputs; config only"
    )
    add_aws_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    out = Summary()
    return run_main(lambda: out.always(lambda: _main(argv, out)), prog=PROG)


def _main(argv: list[str] | None, out: Summary) -> int:
    args = build_parser().parse_args(argv)
    out.input, out.dry_run = args.manifest or args.from_listing, args.dry_run
    if args.manifest and args.from_listing:
        raise CliError("give a manifest (path, s3:// URI or 'latest') or --from-listing, not both")
    if not args.manifest and not args.from_listing:
        raise CliError(
            "give a manifest (path, s3:// URI or 'latest') or --from-listing s3://bucket/prefix/"
        )
    for name in ("concurrency", "samples", "max_attempts"):
        if getattr(args, name) < (0 if name == "samples" else 1):
            raise CliError(f"--{name.replace('_', '-')} must be positive")
    if args.rate is not None and args.rate <= 0:
        raise CliError("--rate must be positive (messages per second)")
    cfg = config_from_args(args)
    clients = clients_from_args(args, cfg, max_pool_connections=args.concurrency + 4)
    deployment = Deployment(cfg, clients, use_stack=not args.no_stack)
    try:  # the deployed settings: MessageGroupId, selection and names as the Lambdas have them
        cfg = deployment.settle(given_settings(args))
    except (BotoCoreError, ClientError):
        if not args.dry_run:
            raise  # a dry run goes on without AWS access; _expected_bucket notes why

    def s3() -> S3Client:
        client: S3Client = clients("s3")
        return client

    row_filter = RowFilter(
        KeySelection(
            prefixes=tuple(args.prefix) or cfg.prefixes,
            suffixes=tuple(args.suffix) or cfg.suffixes,
        ),
        min_size=args.min_size,
        max_size=args.max_size,
        modified_after=args.modified_after,
    )
    expected = _expected_bucket(deployment, args)
    source = _open_source(args, cfg, deployment, expected, s3)
    _check_bucket(source, expected, dry_run=args.dry_run, why=deployment.notes)
    if (
        args.modified_after
        and source.columns is not None
        and "lastmodifieddate" not in source.columns
    ):
        raise CliError(
            f"--modified-after needs LastModifiedDate, which {source.description} does not list"
        )
    notes = [*deployment.notes, *source.notes]

    opts = Options(
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        max_in_flight=args.max_in_flight or 2 * args.concurrency,
        rate=args.rate,
        retry=RetryPolicy(max_attempts=args.max_attempts),
        samples=args.samples,
        latency=args.latency,
        put_latency=args.put_latency,
        bedrock_rpm=args.bedrock_rpm,
        rejects=Path(args.rejects),
        workdir=Path(args.work_dir) if args.work_dir else None,
        verify_first=args.verify_first,
    )
    identity = {"bucket": source.bucket, **row_filter.identity()}
    store: CheckpointStore | None = None
    queue_url: str | None = None
    sqs: SQSClient | None = None
    if args.dry_run:
        checkpoint = Checkpoint(source.run_id, source.description, identity)
    else:
        store = open_store(args.checkpoint, s3)
        opts.checkpoint_every = (
            args.checkpoint_every
            if args.checkpoint_every is not None
            else (5.0 if is_s3_uri(args.checkpoint) else 0.0)
        )
        checkpoint = _load_checkpoint(store, source, identity, restart=args.restart)
        if checkpoint.complete:
            summary = {
                "status": "already_complete",
                "input": source.description,
                "checkpoint": store.location,
                "total_sent_all_runs": checkpoint.sent,
                "hint": "pass --restart to send everything again",
            }
            out.emit(summary)
            return EXIT_OK
        queue_url = deployment.queue_url(args.queue_url)
        sqs = clients("sqs", max_attempts=1)
        _check_queue(sqs, queue_url)

    verifying = source.verify is not None and opts.verify_first and not opts.dry_run
    if verifying and source.verify_bytes >= _VERIFY_NOTE_BYTES:
        notes.append(
            f"checking the MD5 of {source.verify_bytes / 2**20:,.0f} MiB of data files "
            "before sending (--no-verify-first skips this)"
        )
    for note in notes:
        print(f"{PROG}: note: {note}", file=sys.stderr)
    reporter = make_reporter(args.progress, sys.stderr, interval=args.log_interval)
    backfill = Backfill(
        cfg,
        source,
        row_filter,
        checkpoint,
        store,
        opts,
        sqs=sqs,
        queue_url=queue_url,
        reporter=reporter,
    )
    resumed = any(p.rows or p.done for p in checkpoint.inputs.values())
    extra: dict[str, Any] = {"resumed": resumed, "notes": notes}
    if store is not None:
        extra.update(checkpoint=store.location, queue_url=queue_url)
    out.run = (backfill, extra)  # a second Ctrl-C in run() still prints its summary
    with stop_on_signals(backfill) as settled:
        backfill.run()
        settled()  # from here a late Ctrl-C changes nothing: the summary is being printed
        out.emit_run()
    if backfill.error is not None:
        err = backfill.error
        message = str(err) if isinstance(err, BackfillError) else describe_aws_error(err)
        raise BackfillError(f"{message} (summary above; progress saved)", EXIT_ERROR)
    if backfill.stop_reason:
        return EXIT_INTERRUPTED
    return EXIT_INCOMPLETE if backfill.stats.rejected else EXIT_OK


# --------------------------------------------------------------------------- helpers

_VERIFY_NOTE_BYTES = 64 * 2**20
"""Say that the MD5 pre-pass runs only when it takes long enough to be noticed."""


def _open_source(
    args: argparse.Namespace,
    cfg: PipelineConfig,
    deployment: Deployment,
    expected: str | None,
    s3: S3ClientFactory,
) -> Source:
    if args.from_listing:
        if not is_s3_uri(args.from_listing):
            raise CliError(f"--from-listing {args.from_listing!r}: expected s3://bucket/prefix")
        uri = parse_s3_uri(args.from_listing, "--from-listing")
        owner = SourceBucket(expected, cfg.source_bucket_owner).owner_for(uri.bucket)
        return listing_source(uri, s3, owner)
    where = resolve_manifest(
        args.manifest,
        s3,
        inventory_bucket=deployment.inventory_bucket(args.inventory_bucket),
        source_bucket=expected,
        config_id=cfg.inventory_config_id,
    )
    return manifest_source(load_manifest(where, s3), s3)


def _expected_bucket(deployment: Deployment, args: argparse.Namespace) -> str | None:
    """The bucket the pipeline indexes; a dry run may go on without AWS access."""
    try:
        return deployment.source_bucket(args.bucket)
    except (BotoCoreError, ClientError) as exc:
        if not args.dry_run:
            raise
        deployment.notes.append(f"stack not read ({describe_aws_error(exc)})")
        return None


def _check_bucket(
    source: Source, expected: str | None, *, dry_run: bool, why: Sequence[str] = ()
) -> None:
    """Sending another bucket's objects would only produce failures: the embedder may
    read the source bucket only. Refuse unless the operator names that bucket.

    ``why`` are the notes of the stack lookup: when it failed (an endpoint that is down,
    no permission), that is the cause the operator must see, not just the fallback's."""
    if expected is None:
        if dry_run:
            return
        stack = "; ".join(why) or "no stack output"
        raise CliError(
            f"cannot tell which bucket the pipeline indexes ({stack}; config "
            f"source_bucket_name is empty); pass --bucket {source.bucket} if that is the one"
        )
    if source.bucket != expected:
        raise CliError(
            f"{source.description} lists bucket {source.bucket!r}, but the pipeline indexes "
            f"{expected!r}; use that bucket's inventory, or pass --bucket {source.bucket} if the "
            "pipeline really reads it"
        )


def _load_checkpoint(
    store: CheckpointStore, source: Source, identity: dict[str, Any], *, restart: bool
) -> Checkpoint:
    existing = None if restart else store.load()
    if existing is None:
        return Checkpoint(source.run_id, source.description, identity)
    existing.check_belongs(source.run_id, identity, store.location)
    return existing


def _check_queue(sqs: SQSClient, queue_url: str) -> None:
    """The queue must exist and be FIFO (group ids and dedup ids need FIFO)."""
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["FifoQueue"])
    except ClientError as exc:
        if error_code(exc) in QUEUE_MISSING_CODES:
            raise CliError(
                f"queue {queue_url} does not exist: deploy the stack, check --region, or fix "
                "--queue-url"
            ) from exc
        raise
    if attrs.get("Attributes", {}).get("FifoQueue") != "true":
        raise CliError(
            f"queue {queue_url} is not a FIFO queue; the pipeline needs its FIFO queue (name "
            "ending in .fifo) for ordering and deduplication"
        )


__all__ = ["DEFAULT_CHECKPOINT", "PROG", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
