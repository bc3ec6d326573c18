"""The ``imgsearch`` command line: shared options, then one subparser per command.

Options work like the AWS CLI's: they may come before or after the command (the main
parser holds their defaults; each subparser takes a copy whose defaults are suppressed,
so an option given before the command is not overwritten). A usage error is one line,
like every other error, and a mistyped command or option gets "did you mean ...".
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from scripts.common.cli import add_aws_options
from scripts.common.console import OUTPUT_FORMATS
from scripts.common.errors import EXIT_ERROR
from scripts.imgsearch.commands import delete, dlq, get, search, serve, status, verify
from scripts.imgsearch.context import PROG

COMMANDS = (search, get, delete, status, dlq, verify, serve)
"""In the order ``imgsearch --help`` lists them."""


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)$")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus where to get help), like every error.

    An unknown option is reported as unknown (with a suggestion), before argparse
    would report a required argument as missing because of it.
    """

    _argv: list[str] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(args) if args is not None else sys.argv[1:]
        parsed, extras = super().parse_known_args(args, namespace)
        unknown = self._unknown_option(extras)
        if unknown:
            self.error(self._describe_unknown(unknown))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        unknown = self._unknown_option(self._argv)
        if unknown and "required" in message:
            message = self._describe_unknown(unknown)
        choice = _INVALID_CHOICE.search(message)
        if choice:
            message = self._describe_choice(message, choice)
        self.exit(EXIT_ERROR, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")

    def _describe_choice(self, message: str, choice: re.Match[str]) -> str:
        """An invalid command: a mistyped option before it, or a close command name."""
        word = choice.group(1)
        before = self._argv[: self._argv.index(word)] if word in self._argv else []
        unknown = self._unknown_option(before)
        if unknown:  # `--outptu json search`: argparse took the option's value for a command
            return self._describe_unknown(unknown)
        choices = re.findall(r"'([^']*)'", choice.group(2))
        close = difflib.get_close_matches(word, choices, n=1)
        if not close:
            return message
        return f"{message[: choice.start()]}unknown command {word!r} (did you mean {close[0]!r}?)"

    def _unknown_option(self, argv: Sequence[str]) -> str | None:
        """The first ``--name`` in ``argv`` that names none of this parser's options."""
        known = list(self._option_string_actions)
        for token in argv:
            if token == "--":
                return None
            name = token.split("=", 1)[0]
            if not name.startswith("--") or name in known:
                continue
            if not any(option.startswith(name) for option in known):  # an abbreviation
                return name
        return None

    def _describe_unknown(self, name: str) -> str:
        options = [o for o in self._option_string_actions if o.startswith("--")]
        close = difflib.get_close_matches(name, options, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown option {name}{hint}"


def common_options(*, suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """AWS, config and resource-name options, and ``--output``: every command takes them.

    ``suppress_defaults``: the subcommands' copy, which sets only what was given after
    the command, so what was given before it (parsed by the main parser) survives.
    """
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
    if suppress_defaults:
        for action in common._actions:
            action.default = argparse.SUPPRESS
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options(suppress_defaults=True)
    parser = _Parser(
        prog=PROG,
        parents=[common_options()],
        description="Search the image index and operate the ingestion pipeline.",
        epilog="Run `imgsearch COMMAND --help` for the options of one command; the options "
        "above may also come before the command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub, common)
    return parser


__all__ = ["COMMANDS", "build_parser"]
