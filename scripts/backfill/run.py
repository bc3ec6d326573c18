"""One backfill run: read the inputs, filter, send, and checkpoint what SQS acknowledged.

Progress is checkpointed after acknowledged batches (gap-free: see
:class:`scripts.backfill.sender.Watermark`), so a run stopped by Ctrl-C, an error or a
crash continues where it stopped; :meth:`Backfill.summary` is what the CLI prints (built
by ``scripts.backfill.tally``, which keeps the counters).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.messages import MessageError, ObjectMessage, for_backfill, now_iso, to_send_entry
from scripts.backfill.checkpoint import Checkpoint, CheckpointStore, InputProgress
from scripts.backfill.errors import BackfillError
from scripts.backfill.estimate import Workload, estimate
from scripts.backfill.filters import RowFilter
from scripts.backfill.progress import ProgressSnapshot, Reporter
from scripts.backfill.rows import InventoryRow, RowReader
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
from scripts.backfill.sources import Input, Source
from scripts.backfill.tally import Stats, run_summary

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DEFAULT_REJECTS = "imgsearch-backfill.rejected.jsonl"
BATCH = LIMITS.sqs_batch_max_entries


@dataclass(frozen=True)
class Ticket:
    """How far an input is read once everything issued before this is acknowledged."""

    input: str
    rows: int
    key: str | None
    done: bool = False


@dataclass
class Options:
    """How to run, from the command line; the defaults are the CLI's."""

    dry_run: bool = False
    concurrency: int = 16
    max_in_flight: int = 32
    rate: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    checkpoint_every: float = 0.0
    samples: int = 5
    latency: float = 0.5
    put_latency: float = 0.0
    bedrock_rpm: float | None = None
    rejects: Path = Path(DEFAULT_REJECTS)
    workdir: Path | None = None
    verify_first: bool = True
    """Check every unfinished input (the data files' MD5) before the first message."""


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
        sqs: SQSClient | None = None,
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
        self._watermark: Watermark[Ticket] = Watermark()
        self._dirty = False
        self._last_save = 0.0
        self._last_report = 0.0
        self._rejects: TextIO | None = None
        self._done_weight = sum(i.weight for i in source.inputs if checkpoint.progress(i.name).done)
        self._current: tuple[Input, RowReader] | None = None
        self._partial = 0.0
        """Weight read of the input stopped part-way, so the last progress line is true."""
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
                    self._verify_first()
                    for inp in self.source.inputs:
                        if self.stop_reason or self.error:
                            break
                        progress = self.cp.progress(inp.name)
                        if not progress.done:
                            self._read_input(inp, progress, Path(tmp))
                except (BackfillError, ClientError, BotoCoreError, OSError) as exc:
                    if self.error is None:
                        self.error = exc
                self._finish()
            except KeyboardInterrupt:  # the second Ctrl-C: save and leave now
                self._abort()
                raise

    def _verify_first(self) -> None:
        """The pre-pass: a damaged input anywhere stops the run before anything is sent."""
        verify = self.source.verify
        if verify is None or self.opts.dry_run or not self.opts.verify_first:
            return
        done = {i.name for i in self.source.inputs if self.cp.progress(i.name).done}
        verify(done, lambda: self.stop_reason is not None)

    def _read_input(self, inp: Input, progress: InputProgress, workdir: Path) -> None:
        reader, rows = inp.open(progress, workdir)
        self._current = (inp, reader)
        self._partial = 0.0
        finished = False
        n = progress.rows
        last_key = progress.after_key
        entries: list[dict[str, str]] = []
        event_time = now_iso()
        reason_of = self.filter.reason
        stats = self.stats
        dry = self.opts.dry_run
        bucket = self.source.bucket
        try:
            for row in rows:
                n += 1
                stats.rows += 1
                last_key = row.key
                reason = reason_of(row)
                msg = None if reason is not None else _message(bucket, row, event_time)
                if msg is None:
                    reason = reason or "invalid_name"
                    stats.skipped[reason] += 1
                    if dry:
                        stats.sample_skip(reason, row.key, self.opts.samples)
                else:
                    stats.selected += 1
                    stats.selected_bytes += row.size or 0
                    stats.key_bytes += len(row.key.encode("utf-8"))
                    if dry:
                        stats.sample(f"s3://{bucket}/{row.key}", row.size, self.opts.samples)
                    else:
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
            if not finished:
                self._partial = inp.weight * reader.fraction()
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

    def _fraction(self) -> float | None:
        total = sum(i.weight for i in self.source.inputs)
        if self.source.format == "ListObjectsV2" or not total:
            return None
        current = self._partial
        if self._current is not None:
            inp, reader = self._current
            current = inp.weight * reader.fraction()
        return min(1.0, (self._done_weight + current) / total)

    def snapshot(self) -> ProgressSnapshot:
        return ProgressSnapshot(
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
        """What the CLI prints: see :func:`scripts.backfill.tally.run_summary`."""
        opts = self.opts

        def estimate_of(work: Workload) -> dict[str, Any]:
            return estimate(
                work,
                self.cfg,
                latency_s=opts.latency,
                put_latency_s=opts.put_latency,
                bedrock_rpm=opts.bedrock_rpm,
            ).as_dict()

        return run_summary(
            self.stats,
            self.source,
            self.cp,
            elapsed=time.monotonic() - self._start,
            dry_run=opts.dry_run,
            rejects=opts.rejects,
            error=self.error,
            stop_reason=self.stop_reason,
            estimate=estimate_of,
        )


def _message(bucket: str, row: InventoryRow, event_time: str) -> ObjectMessage | None:
    """The router's message for ``row``; None for a name S3 would refuse (a key over
    1,024 bytes, ...), which the core will not build: skipped as ``invalid_name``."""
    try:
        return for_backfill(
            bucket,
            row.key,
            size=row.size,
            etag=row.etag,
            version_id=row.version_id,
            event_time=event_time,
        )
    except MessageError:
        return None


__all__ = ["BATCH", "DEFAULT_REJECTS", "Backfill", "Options", "Stats", "Ticket"]
