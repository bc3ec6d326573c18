"""The deployed settings replace the local config's; a deliberate local value that differs
is refused (issue 11, point 3). The stack is moto's CloudFormation, as a deployed one."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from imgsearch.blueprint import (
    DEPLOYED_FIELDS,
    INDEX_FIELDS,
    deployed_config_json,
    parse_deployed_config,
)
from imgsearch.config import ConfigError, PipelineConfig, load_config
from imgsearch.contract import OUTPUTS
from scripts.common.cli import Clients, CliError, add_aws_options
from scripts.common.deployed_config import apply_deployed, given_settings
from scripts.common.deployment import Deployment
from scripts.common.errors import DeploymentError
from tests.unit.backfill_support import aws_env

__all__ = ["aws_env"]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_aws_options(parser)
    return parser.parse_args(list(argv))


def _stack(cfg: PipelineConfig, **outputs: str) -> None:
    template = {
        "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=cfg.stack_name, TemplateBody=json.dumps(template)
    )


# --------------------------------------------------------------------------- the output


def test_deployed_fields_are_config_fields_and_round_trip() -> None:
    assert set(DEPLOYED_FIELDS) <= {f.name for f in fields(PipelineConfig)}
    assert INDEX_FIELDS.issubset(DEPLOYED_FIELDS)
    cfg = PipelineConfig(message_groups=128, prefixes=("a b/", "fotos/año/"), dimension=3072)
    text = deployed_config_json(cfg)
    assert " " not in text.replace("a b/", "")  # compact
    assert parse_deployed_config(text) == {k: getattr(cfg, k) for k in DEPLOYED_FIELDS}


def test_newer_and_older_stacks_are_read_by_what_they_share() -> None:
    assert parse_deployed_config('{"message_groups":8,"from_the_future":1}') == {
        "message_groups": 8
    }
    for bad in ("not json", "[1]", '{"message_groups":"many"}'):
        with pytest.raises(ConfigError):
            parse_deployed_config(bad)


# --------------------------------------------------------------------------- reconciling


def test_deployed_values_replace_the_local_defaults_with_a_note() -> None:
    local = PipelineConfig()
    cfg, notes = apply_deployed(local, {"message_groups": 128, "batch_size": 1}, {})
    assert cfg.message_groups == 128
    assert notes == ["message_groups: using the deployed 128 (local config: 64)"]


def test_a_deliberate_local_value_that_differs_is_refused_naming_both() -> None:
    local = PipelineConfig(message_groups=64, suffixes=(".jpg",))
    deployed = {"message_groups": 128, "suffixes": (".png",)}
    with pytest.raises(CliError) as err:
        apply_deployed(local, deployed, {"message_groups": "-c", "suffixes": "/x/cdk.json"})
    text = str(err.value)
    assert "message_groups: deployed 128, local 64; drop -c message_groups or redeploy" in text
    assert 'suffixes: deployed [".png"], local [".jpg"]; drop suffixes from /x/cdk.json' in text
    # The same value given deliberately is fine, and exempt keys are left alone.
    cfg, notes = apply_deployed(local, {"message_groups": 64}, {"message_groups": "-c"})
    assert (cfg, notes) == (local, [])
    cfg, _ = apply_deployed(local, {"dimension": 3072}, {"dimension": "-c"}, exempt=INDEX_FIELDS)
    assert cfg.dimension == local.dimension


def test_given_settings_are_c_flags_and_a_named_cdk_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMGSEARCH_CDK_JSON", raising=False)
    assert given_settings(_args()) == {}  # the repository's cdk.json is not a choice
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"message_groups": 32, "dimension": 1024}}))
    given = given_settings(_args("--cdk-json", str(cdk_json), "-c", "dimension=3072"))
    assert given == {"message_groups": str(cdk_json), "dimension": "-c"}
    monkeypatch.setenv("IMGSEARCH_CDK_JSON", str(cdk_json))
    assert given_settings(_args()) == {"message_groups": str(cdk_json), "dimension": str(cdk_json)}


# --------------------------------------------------------------------------- the stack


def test_settle_reads_the_stack_output(aws_env: Path) -> None:
    cfg = load_config()
    deployed = cfg.replace(message_groups=128, index_name="images-v2")
    with mock_aws():
        _stack(cfg, **{OUTPUTS.deployed_config: deployed_config_json(deployed)})
        deployment = Deployment(cfg, Clients(boto3.Session()))
        settled = deployment.settle({})
        assert (settled.message_groups, settled.index_name) == (128, "images-v2")
        assert deployment.cfg is settled  # its own fallbacks use the deployed names
        assert deployment.index_name() == "images-v2"
        with pytest.raises(CliError, match="message_groups: deployed 128, local 64"):
            Deployment(cfg, Clients(boto3.Session())).settle({"message_groups": "-c"})


def test_an_empty_owner_setting_pins_the_stacks_own_account_as_the_lambdas_do(
    aws_env: Path,
) -> None:
    cfg = load_config()
    assert cfg.source_bucket_owner == ""
    with mock_aws():
        _stack(cfg, **{OUTPUTS.deployed_config: deployed_config_json(cfg)})
        account = boto3.client("sts").get_caller_identity()["Account"]
        assert Deployment(cfg, Clients(boto3.Session())).settle({}).source_bucket_owner == account
    other = cfg.replace(source_bucket_owner="111122223333")  # a bucket another account owns
    with mock_aws():
        _stack(other, **{OUTPUTS.deployed_config: deployed_config_json(other)})
        settled = Deployment(cfg, Clients(boto3.Session())).settle({})
        assert settled.source_bucket_owner == "111122223333"
    with mock_aws():  # deployed before the field was published: its owner is unknown
        older = json.loads(deployed_config_json(cfg))
        older.pop("source_bucket_owner")
        _stack(cfg, **{OUTPUTS.deployed_config: json.dumps(older)})
        assert Deployment(cfg, Clients(boto3.Session())).settle({}).source_bucket_owner == ""


def test_the_bucket_the_stack_created_is_the_scripts_source_bucket(aws_env: Path) -> None:
    """So the core's "is this the source bucket" rule (the owner pin on a query image by
    S3 URI) holds in the CLI and the page as in the search Lambda."""
    cfg = load_config()
    with mock_aws():
        _stack(
            cfg,
            **{
                OUTPUTS.deployed_config: deployed_config_json(cfg),
                OUTPUTS.source_bucket_name: "imgsearch-source-abc123",
            },
        )
        settled = Deployment(cfg, Clients(boto3.Session())).settle({})
        assert settled.source_bucket_name == "imgsearch-source-abc123"
    mine = cfg.replace(source_bucket_name="my-photos")
    with mock_aws():
        _stack(mine, **{OUTPUTS.deployed_config: deployed_config_json(mine)})
        assert Deployment(mine, Clients(boto3.Session())).settle({}).source_bucket_name == (
            "my-photos"
        )


def test_a_stack_without_the_output_or_without_a_stack_keeps_the_local_config(
    aws_env: Path,
) -> None:
    cfg = load_config()
    with mock_aws():
        assert Deployment(cfg, Clients(boto3.Session())).settle({}) == cfg  # no stack
        _stack(cfg, **{OUTPUTS.queue_url: "https://q/x.fifo"})
        older = Deployment(cfg, Clients(boto3.Session()))
        assert older.settle({"message_groups": "-c"}) == cfg
        assert any("no DeployedConfig output" in n and "redeploy" in n for n in older.notes)


def test_a_damaged_output_is_an_error_naming_the_stack(aws_env: Path) -> None:
    cfg = load_config()
    with mock_aws():
        _stack(cfg, **{OUTPUTS.deployed_config: "{broken"})
        with pytest.raises(DeploymentError, match="DeployedConfig output is not JSON"):
            Deployment(cfg, Clients(boto3.Session())).settle({})
