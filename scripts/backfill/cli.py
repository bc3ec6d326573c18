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
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.messages import for_backfill, now_iso, to_send_entry
from imgsearch.selection import KeySelection
from scripts.backfill.checkpoint import Checkpoint, CheckpointStore, InputProgress, open_store
from scripts.backfill.estimate import Workload, estimate
from scripts.backfill.filters import RowFilter, parse_date, parse_size
from scripts.backfill.inventory import (
    DataFile,
    InventoryError,
    InventoryRow,
    ListingRows,
    Manifest,
    RowReader,
    S3ClientFactory,
    S3Uri,
    fetch_data_file,
    load_manifest,
    open_rows,
    parse_s3_uri,
    resolve_manifest,
    schema_columns,
)
from scripts.backfill.progress import Reporter, Snapshot, make_reporter
from scripts.backfill.sender import (
    AdaptiveLimiter,
    Batch,
    BatchSender,
    Dispatcher,
    RateLimiter,
    RetryPolicy,
    SendResult,
    Watermark,
)
from scripts.common.cli import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    add_aws_options,
    clients_from_args,
    config_from_args,
    describe_aws_error,
    error_code,
    run_main,
)
from scripts.common.deployment import QUEUE_MISSING_CODES, Resources

PROG = "imgsearch-backfill"
DEFAULT_CHECKPOINT = "imgsearch-backfill.checkpoint.json"
DEFAULT_REJECTS = "imgsearch-backfill.rejected.jsonl"
BATCH = LIMITS.sqs_batch_max_entries


# --------------------------------------------------------------------------- inputs


OpenedInput = tuple[RowReader, Iterator[InventoryRow]]
Opener = Callable[[InputProgress, Path], OpenedInput]
"""Opens an input where its checkpoint says it stopped (downloading it into the path)."""


@dataclass(frozen=True)
class Input:
    """One stream of rows: a data file of the manifest, or the listing."""

    name: str
    """Its key in the checkpoint (the data file's S3 key, or the listing URI)."""
    weight: int
    """Bytes, so the progress bar advances by share of the inventory read."""
    open: Opener


@dataclass(frozen=True)
class Source:
    """What is being backfilled, and how to read it."""

    run_id: str
    description: str
    bucket: str
    inputs: tuple[Input, ...]
    columns: frozenset[str] | None
    """Normalised column names (``lastmodifieddate``, ...); None if the input does not say."""
    format: str
    notes: tuple[str, ...] = ()


def manifest_source(manifest: Manifest, s3: S3ClientFactory) -> Source:
    def opener(data: DataFile) -> Opener:
        def open_input(progress: InputProgress, workdir: Path) -> OpenedInput:
            path = fetch_data_file(manifest, data, s3, workdir)
            reader = open_rows(manifest, path, data.key)
            return reader, reader.rows(progress.rows)

        return open_input

    notes: tuple[str, ...] = ()
    if not manifest.checksum_verified:
        notes = (
            f"no manifest.checksum next to {manifest.location}: the manifest itself is unverified",
        )
    return Source(
        run_id=f"manifest:{manifest.identity}",
        description=manifest.location,
        bucket=manifest.source_bucket,
        inputs=tuple(Input(f.key, f.size, opener(f)) for f in manifest.files),
        columns=schema_columns(manifest),
        format=manifest.file_format,
        notes=notes,
    )


def listing_source(uri: S3Uri, s3: S3ClientFactory) -> Source:
    def open_input(progress: InputProgress, workdir: Path) -> OpenedInput:
        reader = ListingRows(s3(), uri, progress.after_key)
        return reader, reader.rows()

    return Source(
        run_id=f"listing:{uri}",
        description=f"listing of {uri}",
        bucket=uri.bucket,
        inputs=(Input(str(uri), 1, open_input),),
        columns=frozenset({"key", "size", "etag", "lastmodifieddate"}),
        format="ListObjectsV2",
    )


# --------------------------------------------------------------------------- the run


@dataclass
class Stats:
    rows: int = 0
    selected: int = 0
    selected_bytes: int = 0
    key_bytes: int = 0
    sent: int = 0
    rejected: int = 0
    retried_entries: int = 0
    throttled_calls: int = 0
    calls: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Ticket:
    """How far an input is read once everything issued before this is acknowledged."""

    input: str
    rows: int
    key: str | None
    done: bool = False


@dataclass
class Options:
    dry_run: bool = False
    concurrency: int = 16
    max_in_flight: int = 32
    rate: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    checkpoint_every: float = 0.0
    samples: int = 5
    latency: float = 0.5
    rejects: Path = Path(DEFAULT_REJECTS)
    workdir: Path | None = None


class Backfill:
    """Reads the inputs, filters, sends, and checkpoints the acknowledged watermark."""

    def __init__(
        self,
        cfg: PipelineConfig,
        source: Source,
        row_filter: RowFilter,
        checkpoint: Checkpoint,
        store: CheckpointStore | None,
        opts: Options,
        *,
        sqs: Any = None,
        queue_url: str | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.filter = row_filter
        self.cp = checkpoint
        self.store = store
        self.opts = opts
        self.reporter = reporter
        self.stats = Stats()
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.samples: list[dict[str, Any]] = []
        self.skipped_samples: dict[str, list[str]] = {}
        self._watermark: Watermark[Ticket] = Watermark()
        self._dirty = False
        self._last_save = 0.0
        self._last_report = 0.0
        self._rejects: TextIO | None = None
        self._done_weight = sum(i.weight for i in source.inputs if checkpoint.progress(i.name).done)
        self._current: tuple[Input, RowReader] | None = None
        self._start = time.monotonic()
        self._start_fraction = self._fraction()
        self._dispatcher: Dispatcher | None = None
        if not opts.dry_run:
            assert sqs is not None and queue_url is not None
            limiter = AdaptiveLimiter(opts.concurrency)
            rate = RateLimiter(opts.rate) if opts.rate else None
            sender = BatchSender(sqs, queue_url, limiter=limiter, rate=rate, retry=opts.retry)
            self._dispatcher = Dispatcher(
                sender, workers=opts.concurrency, max_in_flight=opts.max_in_flight
            )

    # ------------------------------------------------------------------ control

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def run(self) -> None:
        """Read every unfinished input; always leave a saved, gap-free checkpoint.

        Errors (a damaged data file, SQS refusing) stop the reading but not the
        bookkeeping: batches in flight are awaited and the watermark is saved, so the
        next run resends nothing that was acknowledged and skips nothing that was not.
        """
        workdir = tempfile.TemporaryDirectory(prefix="imgsearch-backfill-", dir=self.opts.workdir)
        with workdir as tmp:
            try:
                try:
                    for inp in self.source.inputs:
                        if self.stop_reason or self.error:
                            break
                        progress = self.cp.progress(inp.name)
                        if not progress.done:
                            self._read_input(inp, progress, Path(tmp))
                except (CliError, ClientError, BotoCoreError, OSError) as exc:
                    if self.error is None:
                        self.error = exc
                self._finish()
            except KeyboardInterrupt:  # the second Ctrl-C: save and leave now
                self._abort()
                raise

    def _read_input(self, inp: Input, progress: InputProgress, workdir: Path) -> None:
        reader, rows = inp.open(progress, workdir)
        self._current = (inp, reader)
        n = progress.rows
        last_key = progress.after_key
        entries: list[dict[str, str]] = []
        event_time = now_iso()
        reason_of = self.filter.reason
        stats = self.stats
        dry = self.opts.dry_run
        try:
            for row in rows:
                n += 1
                stats.rows += 1
                last_key = row.key
                reason = reason_of(row)
                if reason is not None:
                    stats.skipped[reason] += 1
                    if dry:
                        self._sample_skip(reason, row)
                else:
                    stats.selected += 1
                    stats.selected_bytes += row.size or 0
                    stats.key_bytes += len(row.key.encode("utf-8"))
                    if dry:
                        self._sample(row)
                    else:
                        msg = for_backfill(
                            self.source.bucket,
                            row.key,
                            size=row.size,
                            etag=row.etag,
                            version_id=row.version_id,
                            event_time=event_time,
                        )
                        entries.append(
                            to_send_entry(msg, self.cfg.message_groups, str(len(entries)))
                        )
                        if len(entries) == BATCH:
                            self._submit(entries, Ticket(inp.name, n, last_key))
                            entries = []
                            event_time = now_iso()
                if n & 1023 == 0:
                    self._drain()
                    self._report()
                if self.stop_reason or self.error:
                    break
            finished = not (self.stop_reason or self.error)
            if entries:
                self._submit(entries, Ticket(inp.name, n, last_key))
            self._mark(Ticket(inp.name, n, last_key, done=finished))
            if finished:
                self._done_weight += inp.weight
        finally:
            self._current = None
            reader.close()

    # ------------------------------------------------------------------ sending

    def _submit(self, entries: list[dict[str, str]], ticket: Ticket) -> None:
        assert self._dispatcher is not None
        seq = self._watermark.issue(ticket)
        self._dispatcher.submit(Batch(seq, entries))
        self._drain()

    def _mark(self, ticket: Ticket) -> None:
        """A ticket with no batch: rows skipped at the end, or the end of an input."""
        seq = self._watermark.issue(ticket)
        self._advance(self._watermark.ack(seq))

    def _drain(self, *, block: bool = False) -> None:
        if self._dispatcher is None:
            return
        for future in self._dispatcher.completed(block=block, timeout=0.5):
            exc = future.exception()
            if exc is not None:
                if self.error is None:
                    self.error = exc
                continue
            self._record(future.result())
        self._save(force=False)

    def _record(self, result: SendResult) -> None:
        stats = self.stats
        stats.sent += result.sent
        stats.calls += result.calls
        stats.retried_entries += result.retried_entries
        stats.throttled_calls += result.throttled_calls
        self.cp.sent += result.sent
        if result.rejected:
            stats.rejected += len(result.rejected)
            self.cp.rejected += len(result.rejected)
            self._write_rejects(result)
        self._advance(self._watermark.ack(result.seq))

    def _advance(self, passed: list[Ticket]) -> None:
        for ticket in passed:
            progress = self.cp.progress(ticket.input)
            progress.rows = ticket.rows
            progress.after_key = ticket.key
            progress.done = progress.done or ticket.done
            self._dirty = True

    def _write_rejects(self, result: SendResult) -> None:
        if self._rejects is None:
            self.opts.rejects.parent.mkdir(parents=True, exist_ok=True)
            self._rejects = self.opts.rejects.open("a", encoding="utf-8")
        for r in result.rejected:
            line = {"code": r.code, "message": r.message, "message_body": json.loads(r.body)}
            self._rejects.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._rejects.flush()

    def _save(self, *, force: bool, durable: bool = False) -> None:
        if self.store is None or not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._last_save < self.opts.checkpoint_every:
            return
        self.store.save(self.cp, durable=durable)
        self._dirty = False
        self._last_save = now

    def _finish(self) -> None:
        """Wait for the batches in flight, then save the final watermark durably."""
        dispatcher = self._dispatcher
        if dispatcher is not None:
            while dispatcher.in_flight:
                self._drain(block=True)
                self._report()
            dispatcher.close()
        if not self.opts.dry_run:
            if not (self.stop_reason or self.error):
                self.cp.complete = all(self.cp.progress(i.name).done for i in self.source.inputs)
                self._dirty = True
            self._save(force=True, durable=True)
        self._close_outputs()

    def _abort(self) -> None:
        """Second Ctrl-C: save what is acknowledged so far and leave without waiting."""
        if self._dispatcher is not None:
            self._dispatcher.abort()
            for future in self._dispatcher.completed():
                if not future.cancelled() and future.exception() is None:
                    self._record(future.result())
        if not self.opts.dry_run:
            self._save(force=True, durable=True)
        self._close_outputs()

    def _close_outputs(self) -> None:
        if self._rejects is not None:
            self._rejects.close()
            self._rejects = None
        if self.reporter is not None:
            self.reporter.close(self.snapshot())
            self.reporter = None

    # ------------------------------------------------------------------ reporting

    def _sample(self, row: InventoryRow) -> None:
        if len(self.samples) < self.opts.samples:
            self.samples.append({"uri": f"s3://{self.source.bucket}/{row.key}", "size": row.size})

    def _sample_skip(self, reason: str, row: InventoryRow) -> None:
        bucket = self.skipped_samples.setdefault(reason, [])
        if len(bucket) < min(3, self.opts.samples):
            bucket.append(row.key)

    def _fraction(self) -> float | None:
        total = sum(i.weight for i in self.source.inputs)
        if self.source.format == "ListObjectsV2" or not total:
            return None
        current = 0.0
        if self._current is not None:
            inp, reader = self._current
            current = inp.weight * reader.fraction()
        return min(1.0, (self._done_weight + current) / total)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            rows=self.stats.rows,
            selected=self.stats.selected,
            sent=self.stats.sent,
            rejected=self.stats.rejected,
            skipped=dict(self.stats.skipped),
            fraction=self._fraction(),
            start_fraction=self._start_fraction or 0.0,
            elapsed=time.monotonic() - self._start,
            dry_run=self.opts.dry_run,
        )

    def _report(self) -> None:
        if self.reporter is None:
            return
        now = time.monotonic()
        if now - self._last_report >= 0.2:
            self._last_report = now
            self.reporter.update(self.snapshot())

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._start
        stats = self.stats
        if self.error is not None:
            status = "failed"
        elif self.stop_reason:
            status = "interrupted"
        elif self.opts.dry_run:
            status = "dry_run"
        else:
            status = "complete"
        done = sum(1 for i in self.source.inputs if self.cp.progress(i.name).done)
        out: dict[str, Any] = {
            "status": status,
            "input": self.source.description,
            "format": self.source.format,
            "source_bucket": self.source.bucket,
            "dry_run": self.opts.dry_run,
            "rows_read": stats.rows,
            "selected": stats.selected,
            "selected_bytes": stats.selected_bytes,
            "sent": stats.sent,
            "rejected": stats.rejected,
            "skipped": dict(sorted(stats.skipped.items())),
            "inputs": {"total": len(self.source.inputs), "done": done},
            "elapsed_s": round(elapsed, 3),
        }
        if not self.opts.dry_run:
            out.update(
                messages_per_second=round(stats.sent / elapsed, 1) if elapsed > 0 else 0.0,
                sqs_calls=stats.calls,
                retried_entries=stats.retried_entries,
                throttled_calls=stats.throttled_calls,
                total_sent_all_runs=self.cp.sent,
            )
            if stats.rejected:
                out["rejects_file"] = str(self.opts.rejects)
        else:
            out["samples"] = self.samples
            out["skipped_samples"] = self.skipped_samples
            work = Workload(stats.selected, stats.selected_bytes, stats.key_bytes)
            out["estimate"] = estimate(work, self.cfg, latency_s=self.opts.latency).as_dict()
        if self.error is not None:
            out["error"] = str(self.error)
        if self.stop_reason:
            out["stopped_by"] = self.stop_reason
        return out


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
    return run_main(lambda: _main(argv), prog=PROG)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
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
    resources = Resources(cfg, clients, use_stack=not args.no_stack)

    def s3() -> Any:
        return clients("s3")

    row_filter = RowFilter(
        KeySelection(
            prefixes=tuple(args.prefix) or cfg.prefixes,
            suffixes=tuple(args.suffix) or cfg.suffixes,
        ),
        min_size=args.min_size,
        max_size=args.max_size,
        modified_after=args.modified_after,
    )
    expected = _expected_bucket(resources, args)
    source = _open_source(args, cfg, resources, expected, s3)
    _check_bucket(source, expected, dry_run=args.dry_run, why=resources.notes)
    if (
        args.modified_after
        and source.columns is not None
        and "lastmodifieddate" not in source.columns
    ):
        raise CliError(
            f"--modified-after needs LastModifiedDate, which {source.description} does not list"
        )
    notes = [*resources.notes, *source.notes]

    opts = Options(
        dry_run=args.dry_run,
        concurrency=args.concurrency,
        max_in_flight=args.max_in_flight or 2 * args.concurrency,
        rate=args.rate,
        retry=RetryPolicy(max_attempts=args.max_attempts),
        samples=args.samples,
        latency=args.latency,
        rejects=Path(args.rejects),
        workdir=Path(args.work_dir) if args.work_dir else None,
    )
    identity = {"bucket": source.bucket, **row_filter.identity()}
    store: CheckpointStore | None = None
    queue_url: str | None = None
    sqs = None
    if args.dry_run:
        checkpoint = Checkpoint(source.run_id, source.description, identity)
    else:
        store = open_store(args.checkpoint, s3)
        opts.checkpoint_every = (
            args.checkpoint_every
            if args.checkpoint_every is not None
            else (5.0 if args.checkpoint.startswith("s3://") else 0.0)
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
            print(json.dumps(summary, ensure_ascii=False, indent=2))
            return EXIT_OK
        queue_url = resources.queue_url(args.queue_url)
        sqs = clients("sqs", max_attempts=1)
        _check_queue(sqs, queue_url)

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
    with _stop_on_signals(backfill):
        backfill.run()
    summary = backfill.summary()
    summary.update(resumed=resumed, notes=notes)
    if store is not None:
        summary["checkpoint"] = store.location
        summary["queue_url"] = queue_url
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    if backfill.error is not None:
        err = backfill.error
        message = str(err) if isinstance(err, CliError) else describe_aws_error(err)
        raise CliError(f"{message} (summary above; progress saved)", EXIT_ERROR)
    if backfill.stop_reason:
        return EXIT_INTERRUPTED
    return EXIT_INCOMPLETE if backfill.stats.rejected else EXIT_OK


# --------------------------------------------------------------------------- helpers


def _open_source(
    args: argparse.Namespace,
    cfg: PipelineConfig,
    resources: Resources,
    expected: str | None,
    s3: S3ClientFactory,
) -> Source:
    if args.from_listing:
        uri = parse_s3_uri(args.from_listing)
        if uri is None:
            raise CliError(f"--from-listing {args.from_listing!r}: expected s3://bucket/prefix")
        return listing_source(uri, s3)
    where = resolve_manifest(
        args.manifest,
        s3,
        inventory_bucket=resources.inventory_bucket(args.inventory_bucket),
        source_bucket=expected,
        config_id=cfg.inventory_config_id,
    )
    return manifest_source(load_manifest(where, s3), s3)


def _expected_bucket(resources: Resources, args: argparse.Namespace) -> str | None:
    """The bucket the pipeline indexes; a dry run may go on without AWS access."""
    try:
        return resources.source_bucket(args.bucket)
    except (BotoCoreError, ClientError) as exc:
        if not args.dry_run:
            raise
        resources.notes.append(f"stack not read ({describe_aws_error(exc)})")
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


def _check_queue(sqs: Any, queue_url: str) -> None:
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


@contextlib.contextmanager
def _stop_on_signals(backfill: Backfill) -> Iterator[None]:
    """First Ctrl-C / SIGTERM: stop reading, let batches in flight finish, save, exit 130.
    A second one quits at once (the checkpoint on disk is still consistent)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if backfill.stop_reason is not None:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        backfill.request_stop(name)
        print(
            f"\n{PROG}: {name}: finishing the batches in flight and saving progress "
            "(again to quit now)",
            file=sys.stderr,
        )

    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


__all__ = ["Backfill", "InventoryError", "Options", "Source", "build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
