"""What one backfill run counted, and the JSON summary the CLI prints of it.

:class:`~scripts.backfill.run.Backfill` counts as it reads and sends; :class:`Stats`
holds this run's counters and a dry run's samples, and :func:`run_summary` turns them,
with the checkpoint's totals over all runs, into the summary scripts read on stdout.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.backfill.checkpoint import Checkpoint
from scripts.backfill.estimate import Workload
from scripts.backfill.sources import Source

SKIPPED_SAMPLES_PER_REASON = 3


@dataclass
class Stats:
    """This run's counters (the checkpoint keeps the totals over all runs)."""

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
    samples: list[dict[str, Any]] = field(default_factory=list)
    """A dry run's first selected objects (``uri``, ``size``)."""
    skipped_samples: dict[str, list[str]] = field(default_factory=dict)
    """A dry run's first skipped keys, per reason."""

    def sample(self, uri: str, size: int | None, limit: int) -> None:
        if len(self.samples) < limit:
            self.samples.append({"uri": uri, "size": size})

    def sample_skip(self, reason: str, key: str, limit: int) -> None:
        keys = self.skipped_samples.setdefault(reason, [])
        if len(keys) < min(SKIPPED_SAMPLES_PER_REASON, limit):
            keys.append(key)


def run_status(*, error: BaseException | None, stop_reason: str | None, dry_run: bool) -> str:
    if error is not None:
        return "failed"
    if stop_reason:
        return "interrupted"
    return "dry_run" if dry_run else "complete"


def run_summary(
    stats: Stats,
    source: Source,
    cp: Checkpoint,
    *,
    elapsed: float,
    dry_run: bool,
    rejects: Path,
    error: BaseException | None,
    stop_reason: str | None,
    estimate: Callable[[Workload], dict[str, Any]],
) -> dict[str, Any]:
    """The run's JSON summary; a dry run's carries the samples and ``estimate`` of the work."""
    done = sum(1 for i in source.inputs if cp.progress(i.name).done)
    out: dict[str, Any] = {
        "status": run_status(error=error, stop_reason=stop_reason, dry_run=dry_run),
        "input": source.description,
        "format": source.format,
        "source_bucket": source.bucket,
        "dry_run": dry_run,
        "rows_read": stats.rows,
        "selected": stats.selected,
        "selected_bytes": stats.selected_bytes,
        "sent": stats.sent,
        "rejected": stats.rejected,
        "skipped": dict(sorted(stats.skipped.items())),
        "inputs": {"total": len(source.inputs), "done": done},
        "elapsed_s": round(elapsed, 3),
    }
    if not dry_run:
        out.update(
            messages_per_second=round(stats.sent / elapsed, 1) if elapsed > 0 else 0.0,
            sqs_calls=stats.calls,
            retried_entries=stats.retried_entries,
            throttled_calls=stats.throttled_calls,
            total_sent_all_runs=cp.sent,
        )
        if stats.rejected:
            out["rejects_file"] = str(rejects)
    else:
        out["samples"] = stats.samples
        out["skipped_samples"] = stats.skipped_samples
        out["estimate"] = estimate(Workload(stats.selected, stats.selected_bytes, stats.key_bytes))
    if error is not None:
        out["error"] = str(error)
    if stop_reason:
        out["stopped_by"] = stop_reason
    return out


__all__ = ["Stats", "run_status", "run_summary"]
