"""Run the backfill and stop it mid-run, for the resume tests.

``python -m tests.unit.backfill_crash_runner N kill|int -- <backfill args>`` counts
SendMessageBatch calls that SQS answered (botocore's ``after-call`` event: the batch
is in the queue, the script has not seen the answer yet) and, once N were answered
and a checkpoint exists in the working directory, sends the process SIGKILL
(``kill``: nothing runs after it, as with ``kill -9``) or SIGINT (``int``: as Ctrl-C;
``int2``: Ctrl-C, and again on the next answered call, to quit at once).
``late``: Ctrl-C, and again once the backfill's ``main`` has returned (after the
summary, while the process exits). N = 0 never stops. The fault sits at the network
edge; the backfill code runs unmodified.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import boto3.session

from scripts.backfill.cli import DEFAULT_CHECKPOINT


def main() -> int:
    after, how = int(sys.argv[1]), sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1 :]
    lock = threading.Lock()
    answered = [0]
    fired: list[Any] = [False, 0]
    checkpoint = Path(DEFAULT_CHECKPOINT)

    def on_after_call(**_: Any) -> None:
        with lock:
            answered[0] += 1
            again = fired[0] and how == "int2" and answered[0] == fired[1] + 1
            hit = bool(after) and answered[0] >= after and checkpoint.exists() and not fired[0]
            if hit:
                fired[:] = [True, answered[0]]
        if hit or again:
            os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGINT)

    original = boto3.session.Session.__init__

    def init(self: boto3.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.events.register("after-call.sqs.SendMessageBatch", on_after_call)

    setattr(boto3.session.Session, "__init__", init)  # noqa: B010 - a test/bench hook
    from scripts.backfill.cli import main as backfill

    code = backfill(argv)
    if how == "late":
        os.kill(os.getpid(), signal.SIGINT)
    return code


if __name__ == "__main__":
    sys.exit(main())
