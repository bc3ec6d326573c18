"""What every operator script shares: AWS-CLI-like options, clients, one-line errors.

The backfill and the ``imgsearch`` CLI both take ``--region``, ``--profile`` and
``--endpoint-url`` like the AWS CLI, read the same ``cdk.json`` config (plus
``-c key=value`` overrides, as ``cdk`` does) and report failures as one line on
stderr with a non-zero exit code, never a traceback: an operator should read what
went wrong and what to do, not a stack.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ProfileNotFound,
)

from imgsearch.config import ConfigError, PipelineConfig, load_config
from imgsearch.s3uri import S3UriError
from imgsearch.search_errors import SearchError
from scripts.common.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    ToolError,
    describe_aws_error,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient
    from mypy_boto3_sqs import SQSClient


# --------------------------------------------------------------------------- options


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """``--region --profile --endpoint-url`` (as the AWS CLI) and the config options."""
    group = parser.add_argument_group("AWS and configuration")
    group.add_argument("--region", help="AWS region (default: config 'region', then AWS_REGION)")
    group.add_argument("--profile", help="named profile from ~/.aws/config")
    group.add_argument(
        "--endpoint-url",
        help="send every AWS call to this URL (a local cloud); AWS_ENDPOINT_URL works too",
    )
    group.add_argument(
        "--cdk-json", help="the cdk.json whose context is the config (default: the repository's)"
    )
    group.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, as `cdk -c` does (repeatable)",
    )


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is an error."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"-c {pair!r}: expected KEY=VALUE, e.g. -c dimension=3072")
        values[key.strip()] = value
    return values


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The deployment's config: cdk.json context, then ``-c`` overrides."""
    # load_config quietly uses the defaults when the file is absent; a path the operator
    # typed must exist, or every name would silently come from the wrong deployment.
    if args.cdk_json and not os.path.isfile(args.cdk_json):
        raise CliError(f"--cdk-json {args.cdk_json}: no such file; give the path of a cdk.json")
    try:
        return load_config(args.cdk_json, overrides=parse_context(args.context))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


# --------------------------------------------------------------------------- clients


class Clients:
    """boto3 clients for one session, created on first use and shared across threads.

    boto3 clients are thread-safe; sharing one client (with a connection pool as large
    as the number of threads using it) is cheaper than one client per thread.
    """

    def __init__(
        self,
        session: boto3.Session,
        *,
        endpoint_url: str | None = None,
        max_pool_connections: int = 10,
    ) -> None:
        self.session = session
        self.endpoint_url = endpoint_url or None
        self.max_pool_connections = max_pool_connections
        self._clients: dict[tuple[str, int | None], Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        region = self.session.region_name
        return str(region) if region else None

    @overload
    def __call__(self, service: Literal["s3"], *, max_attempts: int | None = None) -> S3Client: ...
    @overload
    def __call__(
        self, service: Literal["sqs"], *, max_attempts: int | None = None
    ) -> SQSClient: ...
    @overload
    def __call__(
        self, service: Literal["s3vectors"], *, max_attempts: int | None = None
    ) -> S3VectorsClient: ...
    @overload
    def __call__(
        self, service: Literal["bedrock-runtime"], *, max_attempts: int | None = None
    ) -> BedrockRuntimeClient: ...
    @overload
    def __call__(
        self, service: Literal["cloudformation"], *, max_attempts: int | None = None
    ) -> CloudFormationClient: ...
    @overload
    def __call__(
        self, service: Literal["cloudwatch"], *, max_attempts: int | None = None
    ) -> CloudWatchClient: ...
    @overload
    def __call__(
        self, service: Literal["logs"], *, max_attempts: int | None = None
    ) -> CloudWatchLogsClient: ...
    @overload
    def __call__(
        self, service: Literal["lambda"], *, max_attempts: int | None = None
    ) -> LambdaClient: ...
    @overload
    def __call__(
        self, service: Literal["bedrock"], *, max_attempts: int | None = None
    ) -> BedrockClient: ...
    def __call__(self, service: str, *, max_attempts: int | None = None) -> Any:
        """The client for ``service``; ``max_attempts=1`` turns botocore's retries off
        for callers that retry themselves (per entry, with their own backoff)."""
        cache_key = (service, max_attempts)
        with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                retries: dict[str, Any] = {"mode": "standard"}
                if max_attempts is not None:
                    retries["total_max_attempts"] = max_attempts
                config = botocore.config.Config(
                    max_pool_connections=self.max_pool_connections,
                    retries=retries,
                    connect_timeout=10,
                    read_timeout=60,
                )
                client = self.session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=config,
                )
                self._clients[cache_key] = client
        return client


def clients_from_args(
    args: argparse.Namespace, cfg: PipelineConfig, *, max_pool_connections: int = 10
) -> Clients:
    """A :class:`Clients` for ``--profile``/``--region``/``--endpoint-url`` (then config)."""
    try:
        # boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, which the AWS CLI, the other
        # SDKs and Lambda all honour; take it here so the documented variable works.
        region = args.region or cfg.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=args.profile or None, region_name=region)
    except ProfileNotFound as exc:
        # The profile may come from AWS_PROFILE rather than --profile: name the one used.
        source = (
            f"--profile {args.profile}"
            if args.profile
            else f"AWS_PROFILE={exc.kwargs.get('profile')}"
        )
        raise CliError(f"{source}: no such profile in ~/.aws/config or ~/.aws/credentials") from exc
    if not session.region_name:
        raise CliError(
            "no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
            "or set 'region' in cdk.json context"
        )
    return Clients(
        session, endpoint_url=args.endpoint_url, max_pool_connections=max_pool_connections
    )


# --------------------------------------------------------------------------- errors


def one_line(text: str) -> str:
    """Collapse a multi-line message (botocore's parameter errors have several) to one."""
    return " ".join(text.split())


def run_main(body: Callable[[], int], *, prog: str) -> int:
    """Run ``body`` and turn every expected failure into one stderr line + exit code."""
    try:
        return body()
    except BrokenPipeError:
        # The reader went away (`imgsearch search ... | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError, ValueError):  # stdout is not a file (in tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ToolError as exc:
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except (S3UriError, SearchError) as exc:  # the core's own errors: one line, exit 2
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except (BotoCoreError, ClientError) as exc:
        print(f"{prog}: error: {one_line(describe_aws_error(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "CliError",
    "Clients",
    "ToolError",
    "add_aws_options",
    "clients_from_args",
    "config_from_args",
    "one_line",
    "parse_context",
    "run_main",
]
