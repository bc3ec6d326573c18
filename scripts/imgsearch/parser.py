"""The ``imgsearch`` command line: shared options, then one subparser per command.

Options work like the AWS CLI's and may follow the subcommand (each subparser takes
them as a parent). A usage error is one line, like every other error.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from scripts.common.cli import add_aws_options
from scripts.common.console import OUTPUT_FORMATS
from scripts.common.errors import EXIT_ERROR
from scripts.imgsearch.commands import delete, dlq, get, search, serve, status, verify
from scripts.imgsearch.context import PROG

COMMANDS = (search, get, delete, status, dlq, verify, serve)
"""In the order ``imgsearch --help`` lists them."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to get help), like every error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def common_options() -> argparse.ArgumentParser:
    """AWS, config and resource-name options, and ``--output``: every command takes them."""
    common = _Parser(add_help=False)
    add_aws_options(common)
    names = common.add_argument_group(
        "resources (default: the stack's CloudFormation outputs, then the config)"
    )
    names.add_argument("--vector-bucket", help="S3 Vectors bucket name")
    names.add_argument("--index", help="S3 Vectors index name")
    names.add_argument("--source-bucket", help="the bucket the pipeline indexes")
    names.add_argument("--queue-url", help="the embedding queue's URL")
    names.add_argument("--dlq-url", help="the embedding queue's dead-letter queue URL")
    common.add_argument(
        "--output", choices=OUTPUT_FORMATS, default="table", help="table (default) or json"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = _Parser(
        prog=PROG,
        description="Search the image index and operate the ingestion pipeline.",
        epilog="Run `imgsearch COMMAND --help` for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub, common)
    return parser


__all__ = ["COMMANDS", "build_parser"]
