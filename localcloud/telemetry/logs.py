"""Every log line the local functions write: kept, written to a file, read for facts.

:class:`LogRecorder` is the runtime's main :data:`LogSink`. It keeps the recent lines
(tests read them back), appends them to a file if asked, collects the EMF metric values
(:mod:`localcloud.telemetry.emf`) and feeds the embedder's per-message outcome lines to
the :class:`~localcloud.accounting.Ledger`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from localcloud.accounting import Ledger, parse_outcome
from localcloud.telemetry.emf import Metrics, parse_emf

LogSink = Callable[[str, str], None]
"""``sink(function_name, line)`` for every log line a function writes."""


@dataclass
class LogRecorder:
    """Receives every log line: keeps recent ones, writes a file, feeds metrics and ledger."""

    ledger: Ledger
    log_file: Path | None = None
    keep: int = 5000
    recent: deque[tuple[str, str]] = field(default_factory=deque)
    lines: Counter[str] = field(default_factory=Counter)
    _metrics: Metrics = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _file: TextIO | None = None

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.keep)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.log_file.open("a", encoding="utf-8")

    def __call__(self, function: str, line: str) -> None:
        record: Any = None
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
        with self._lock:
            self.recent.append((function, line))
            self.lines[function] += 1
            if self._file is not None:
                self._file.write(f"{function}\t{line}\n")
            if isinstance(record, dict):
                for key, values in parse_emf(record):
                    self._metrics.setdefault(key, []).extend(values)
        if isinstance(record, dict):
            outcome = parse_outcome(record)
            if outcome is not None:
                self.ledger.record(outcome)

    def take_metrics(self) -> Metrics:
        """The metric values seen since the last take (and flush the log file)."""
        with self._lock:
            metrics, self._metrics = self._metrics, {}
            if self._file is not None:
                self._file.flush()
        return metrics

    def records(self, function: str | None = None) -> list[dict[str, Any]]:
        """Recent JSON log records (of one function), oldest first."""
        out = []
        with self._lock:
            lines = list(self.recent)
        for fn, line in lines:
            if function is not None and fn != function:
                continue
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


__all__ = ["LogRecorder", "LogSink"]
