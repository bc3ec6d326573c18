"""How a backfill ends: the JSON summary on every exit path, and what signals do.

The summary is what scripts read (stdout carries nothing else), so it is printed once
whatever happens: success, a failure before the run started (a bad manifest, no queue),
a failed run, a graceful stop and a second Ctrl-C that quits at once. Signals stop the
run gracefully first, and can never turn the exit status 130 into a death by SIGINT.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.backfill.run import Backfill
from scripts.common.errors import describe_aws_error

PROG = "imgsearch-backfill"


class Summary:
    """The JSON summary on stdout, printed once on every exit path."""

    def __init__(self) -> None:
        self.input: str | None = None
        self.dry_run = False
        self.run: tuple[Backfill, dict[str, Any]] | None = None
        self.printed = False

    def emit(self, summary: dict[str, Any]) -> None:
        if not self.printed:
            self.printed = True
            print(json.dumps(summary, ensure_ascii=False, indent=2, default=str), flush=True)

    def emit_run(self) -> None:
        assert self.run is not None
        backfill, extra = self.run
        self.emit({**backfill.summary(), **extra})

    def always(self, body: Callable[[], int]) -> int:
        """Run ``body``; whatever it raises, print a summary first (then re-raise)."""
        try:
            return body()
        except (Exception, KeyboardInterrupt) as exc:
            if not self.printed:
                if self.run is not None:
                    self.emit_run()
                else:
                    self.emit(self._before_run(exc))
            raise

    def _before_run(self, exc: BaseException) -> dict[str, Any]:
        interrupted = isinstance(exc, KeyboardInterrupt)
        if isinstance(exc, BotoCoreError | ClientError):
            error = describe_aws_error(exc)
        else:
            error = str(exc) or type(exc).__name__
        summary: dict[str, Any] = {
            "status": "interrupted" if interrupted else "failed",
            "input": self.input,
            "dry_run": self.dry_run,
            "rows_read": 0,
            "selected": 0,
            "sent": 0,
        }
        if not interrupted:
            summary["error"] = error
        return summary


@contextlib.contextmanager
def stop_on_signals(backfill: Backfill) -> Iterator[Callable[[], None]]:
    """First Ctrl-C / SIGTERM: stop reading, let batches in flight finish, save, exit 130.
    A second one quits at once (the checkpoint on disk is still consistent).

    Calling what this yields says the run is over and its summary is being printed:
    from then on a signal changes nothing, and after a stop by signal the handler stays
    until the process ends, so a late Ctrl-C (after the summary, while the interpreter
    exits) can never turn the exit status 130 into a death by SIGINT (-2)."""
    settled = threading.Event()
    received = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if settled.is_set():
            return
        received.set()
        if backfill.stop_reason is not None:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        backfill.request_stop(name)
        print(
            f"\n{PROG}: {name}: finishing the batches in flight and saving progress "
            "(again to quit now)",
            file=sys.stderr,
        )

    if threading.current_thread() is not threading.main_thread():
        yield settled.set
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield settled.set
    finally:
        settled.set()
        if not received.is_set():
            for s, h in previous.items():
                signal.signal(s, h)


__all__ = ["PROG", "Summary", "stop_on_signals"]
