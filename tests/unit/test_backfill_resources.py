"""Finding the deployed resources (stack outputs, then config) and the shared CLI helpers."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from moto import mock_aws

from imgsearch.config import load_config
from imgsearch.contract import OUTPUTS
from scripts.common.cli import (
    EXIT_BROKEN_PIPE,
    Clients,
    CliError,
    add_aws_options,
    clients_from_args,
    config_from_args,
    parse_context,
    run_main,
)
from scripts.common.deployment import Deployment
from scripts.common.errors import DeploymentError, describe_aws_error
from tests.unit.backfill_support import aws_env

__all__ = ["aws_env"]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_aws_options(parser)
    return parser.parse_args(list(argv))


def test_names_come_from_the_config_without_a_stack(aws_env: Path) -> None:
    cfg = load_config(overrides={"source_bucket_name": "photos"})
    with mock_aws():
        url = boto3.client("sqs").create_queue(
            QueueName=cfg.queue_name, Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        res = Deployment(cfg, Clients(boto3.Session()))
        assert res.queue_url() == url
        assert res.source_bucket() == "photos"
        assert res.vector_bucket() == cfg.vector_bucket_name
        assert res.index_name() == cfg.index_name
        assert res.inventory_bucket() is None  # only the stack knows it
        assert res.notes == [f"stack {cfg.stack_name!r} not found; using names from the config"]
        with pytest.raises(DeploymentError, match=f"queue {cfg.dlq_name!r} does not exist"):
            res.dlq_url()


def test_stack_outputs_win_and_explicit_values_win_over_both(aws_env: Path) -> None:
    cfg = load_config(overrides={"source_bucket_name": "from-config"})
    outputs = {
        OUTPUTS.source_bucket_name: "from-stack",
        OUTPUTS.vector_bucket_name: "vectors-from-stack",
        OUTPUTS.index_name: "index-from-stack",
        OUTPUTS.queue_url: "https://queue/from-stack.fifo",
        OUTPUTS.inventory_bucket_name: "inventory-from-stack",
    }
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    with mock_aws():
        boto3.client("cloudformation").create_stack(
            StackName=cfg.stack_name, TemplateBody=json.dumps(template)
        )
        res = Deployment(cfg, Clients(boto3.Session()))
        assert res.source_bucket() == "from-stack"
        assert res.vector_bucket() == "vectors-from-stack"
        assert res.index_name() == "index-from-stack"
        assert res.queue_url() == "https://queue/from-stack.fifo"
        assert res.inventory_bucket() == "inventory-from-stack"
        assert res.source_bucket("explicit") == "explicit"
        assert res.queue_url("https://explicit") == "https://explicit"
        assert res.notes == []
        no_stack = Deployment(cfg, Clients(boto3.Session()), use_stack=False)
        assert no_stack.source_bucket() == "from-config"


def test_missing_credentials_are_never_swallowed_by_the_fallback(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    res = Deployment(load_config(), Clients(boto3.Session()))
    with pytest.raises(NoCredentialsError):
        res.source_bucket()


def test_cli_options_and_context_overrides(aws_env: Path) -> None:
    args = _args(
        "--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:1", "-c", "dimension=3072"
    )
    cfg = config_from_args(args)
    assert cfg.dimension == 3072
    clients = clients_from_args(args, cfg, max_pool_connections=7)
    assert clients.region == "eu-west-1"
    sqs = clients("sqs", max_attempts=1)
    assert sqs.meta.endpoint_url == "http://127.0.0.1:1"
    assert sqs.meta.config.max_pool_connections == 7
    assert sqs.meta.config.retries["total_max_attempts"] == 1
    assert clients("sqs", max_attempts=1) is sqs  # one shared, thread-safe client
    with pytest.raises(CliError, match="dimenson"):
        config_from_args(_args("-c", "dimenson=3072"))
    with pytest.raises(CliError, match="expected KEY=VALUE"):
        parse_context(["dimension"])
    with pytest.raises(CliError, match="no such profile"):
        clients_from_args(_args("--profile", "nope"), cfg)


def test_aws_errors_read_as_one_line_with_a_hint() -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no sqs:SendMessage"}}, "SendMessageBatch"
    )
    assert describe_aws_error(denied) == (
        "SendMessageBatch failed: AccessDenied: no sqs:SendMessage; check the IAM permissions "
        "of these credentials"
    )
    assert "no AWS credentials found" in describe_aws_error(NoCredentialsError())
    unreachable = EndpointConnectionError(endpoint_url="https://sqs.example")
    assert describe_aws_error(unreachable).startswith("cannot reach https://sqs.example")
    assert all("\n" not in describe_aws_error(e) for e in (denied, unreachable))


def test_region_is_required(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(CliError, match="no AWS region"):
        clients_from_args(_args(), load_config())


def test_aws_region_is_honoured_like_the_aws_cli(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert clients_from_args(_args(), load_config()).region == "eu-west-1"
    assert clients_from_args(_args("--region", "ap-south-1"), load_config()).region == "ap-south-1"


def test_a_profile_from_aws_profile_is_named_as_such(
    aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    with pytest.raises(CliError, match=r"^AWS_PROFILE=nosuch: no such profile"):
        clients_from_args(_args(), load_config())


def test_an_explicit_cdk_json_must_exist(aws_env: Path) -> None:
    """Falling back to the repository's cdk.json would name another deployment's resources."""
    missing = aws_env / "prod" / "cdk.json"
    with pytest.raises(CliError, match=re.escape(f"--cdk-json {missing}: no such file")):
        config_from_args(_args("--cdk-json", str(missing)))
    present = aws_env / "cdk.json"
    present.write_text(json.dumps({"context": {"dimension": 384}}))
    assert config_from_args(_args("--cdk-json", str(present))).dimension == 384


def test_a_closed_stdout_pipe_is_a_quiet_exit(capsys: pytest.CaptureFixture[str]) -> None:
    """`imgsearch search ... | head` must not print an error when head stops reading."""

    def body() -> int:
        raise BrokenPipeError(32, "Broken pipe")

    assert run_main(body, prog="imgsearch") == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""
