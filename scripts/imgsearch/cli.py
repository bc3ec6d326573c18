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

import os
import sys
from collections.abc import Sequence

from scripts.common.cli import run_main
from scripts.common.errors import EXIT_ERROR
from scripts.imgsearch.context import PROG, Context
from scripts.imgsearch.parser import build_parser


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
