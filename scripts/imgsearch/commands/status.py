"""``imgsearch status``: queue, DLQ, throughput and ETA, once or every ``--watch`` seconds."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from scripts.common.console import print_json
from scripts.common.errors import EXIT_OK, CliError
from scripts.imgsearch.context import Context
from scripts.ops import status

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers

watch_sleep = time.sleep
"""How ``status --watch`` waits between refreshes (tests replace it)."""


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="queue, DLQ, throughput and ETA")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS")
    p.set_defaults(run=run)


def collect(ctx: Context) -> status.Status:
    return status.collect(
        ctx.cfg,
        sqs=ctx.clients("sqs"),
        cloudwatch=ctx.clients("cloudwatch"),
        queue_url=ctx.queue_url(),
        dlq_url=ctx.dlq_url(),
    )


def run(ctx: Context) -> int:
    interval = ctx.args.watch
    if interval is None:
        current = collect(ctx)
        print_json(current.as_dict()) if ctx.json else print(current.render())
        return EXIT_OK
    if interval <= 0:
        raise CliError(f"--watch {interval}: give the refresh interval in seconds, e.g. --watch 5")
    try:
        while True:
            current = collect(ctx)
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
