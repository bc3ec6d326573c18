"""Progress for long runs: a live bar on a terminal, periodic log lines otherwise.

A backfill of millions of objects runs for hours, often under ``nohup`` or in CI
where a redrawing bar would fill the log with escape codes; so the bar appears only
when stderr is a terminal and plain lines (one every ``interval`` seconds) otherwise.
Both go to stderr: stdout carries only the final JSON summary, for scripts.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol, TextIO

from scripts.common.console import format_duration

ProgressMode = Literal["auto", "bar", "log", "none"]


@dataclass
class ProgressSnapshot:
    """Counters of a run at one moment, and how they read to an operator."""

    rows: int = 0
    selected: int = 0
    sent: int = 0
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    fraction: float | None = None
    """Share of the input done (0..1), None when unknown (a listing)."""
    start_fraction: float = 0.0
    """Share already done by earlier runs (resume), so the ETA uses this run's speed."""
    elapsed: float = 0.0
    dry_run: bool = False

    @property
    def rate(self) -> float:
        done = self.selected if self.dry_run else self.sent
        return done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.fraction is None or self.elapsed <= 0:
            return None
        progressed = self.fraction - self.start_fraction
        if progressed <= 0:
            return None
        return (1.0 - self.fraction) * self.elapsed / progressed

    def pace(self) -> str:
        """``12.3k/s · ETA 5m 2s``: what an operator looks at first."""
        eta = self.eta
        return f"{_n(round(self.rate))}/s" + (
            f" · ETA {format_duration(eta)}" if eta is not None else ""
        )

    def counts(self) -> str:
        """``sent 1.2M · rows 1.3M · skipped 100k (suffix 90k, ...)``."""
        skipped = sum(self.skipped.values())
        reasons = ", ".join(
            f"{k} {_n(v)}" for k, v in sorted(self.skipped.items(), key=lambda kv: -kv[1])
        )
        verb = "selected" if self.dry_run else "sent"
        parts = [
            f"{verb} {_n(self.selected if self.dry_run else self.sent)}",
            f"rows {_n(self.rows)}",
        ]
        if self.rejected:
            parts.append(f"rejected {_n(self.rejected)}")
        parts.append(f"skipped {_n(skipped)}" + (f" ({reasons})" if reasons else ""))
        return " · ".join(parts)

    def describe(self) -> str:
        return f"{self.counts()} · {self.pace()}"


class Reporter(Protocol):
    def update(self, snap: ProgressSnapshot) -> None: ...

    def close(self, snap: ProgressSnapshot) -> None: ...


class NullReporter:
    def update(self, snap: ProgressSnapshot) -> None:
        return None

    def close(self, snap: ProgressSnapshot) -> None:
        return None


class LogReporter:
    """One line every ``interval`` seconds, and one at the end."""

    def __init__(self, stream: TextIO, *, interval: float = 10.0, prog: str = "backfill") -> None:
        self.stream = stream
        self.interval = interval
        self.prog = prog
        self._last = time.monotonic()

    def _line(self, snap: ProgressSnapshot) -> None:
        pct = f"{snap.fraction * 100:5.1f}% " if snap.fraction is not None else ""
        print(f"{self.prog}: {pct}{snap.describe()}", file=self.stream, flush=True)

    def update(self, snap: ProgressSnapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line(snap)

    def close(self, snap: ProgressSnapshot) -> None:
        self._line(snap)


class BarReporter:
    """A rich progress bar (percentage of input bytes/rows, counters, rate, ETA)."""

    def __init__(self, stream: TextIO, *, title: str = "backfill") -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
        )
        from rich.table import Column

        self._progress = Progress(
            SpinnerColumn(),
            BarColumn(bar_width=24, table_column=Column(min_width=24)),
            TaskProgressColumn(table_column=Column(min_width=6)),
            TextColumn("{task.fields[pace]}", table_column=Column(no_wrap=True, min_width=18)),
            TextColumn(
                "{task.fields[counts]}",
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
            ),
            console=Console(file=stream),
            refresh_per_second=4,
            transient=False,
        )
        self._task = self._progress.add_task(title, total=1000, pace="", counts="")
        self._progress.start()

    def update(self, snap: ProgressSnapshot) -> None:
        self._progress.update(
            self._task,
            completed=round((snap.fraction or 0.0) * 1000),
            total=1000 if snap.fraction is not None else None,
            pace=snap.pace(),
            counts=snap.counts(),
        )

    def close(self, snap: ProgressSnapshot) -> None:
        self.update(snap)
        self._progress.stop()


def make_reporter(
    mode: ProgressMode, stream: TextIO | None = None, *, interval: float = 10.0
) -> Reporter:
    stream = stream or sys.stderr
    if mode == "none":
        return NullReporter()
    if mode == "bar" or (mode == "auto" and stream.isatty()):
        return BarReporter(stream)
    return LogReporter(stream, interval=interval)


def _n(value: int) -> str:
    """1234567 -> '1.23M': counters stay short enough for one line."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.2f}M"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,}"
