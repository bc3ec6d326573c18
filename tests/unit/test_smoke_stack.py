"""The smoke test's real-account guards: it never deploys over, runs on or destroys a
stack it did not create. AWS is moto (the network edge); the smoke CLI runs as is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgsearch.config import PipelineConfig
from scripts.smoke import stack
from scripts.smoke.cli import main

REGION = "us-east-1"
BUCKET_TEMPLATE = json.dumps(
    {
        "Resources": {
            "DataSource": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
            "DataAccessLogs": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        }
    }
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield


def _cfn() -> Any:
    return boto3.client("cloudformation", region_name=REGION)


def _create(name: str, tags: dict[str, str] | None = None) -> None:
    _cfn().create_stack(
        StackName=name,
        TemplateBody=BUCKET_TEMPLATE,
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )


def _exists(name: str) -> bool:
    return stack.stack_tags(_cfn(), name) is not None


def _cli(record: Path, *argv: str) -> int:
    return main([*argv, "--record", str(record)])


# --------------------------------------------------------------------------- names


def test_smoke_names_are_valid_and_share_nothing_with_the_default_stack() -> None:
    context = stack.smoke_context("imgsearch-smoke-alice-1a2b3c")
    cfg = PipelineConfig.from_mapping(context)  # every derived name passes config's rules
    default = PipelineConfig()
    for key in (
        "stack_name",
        "vector_bucket_name",
        "queue_name",
        "dlq_name",
        "router_dlq_name",
        "service_name",
    ):
        assert getattr(cfg, key) != getattr(default, key), key
        assert "alice-1a2b3c" in getattr(cfg, key), key
    assert cfg.source_bucket_name == ""  # the smoke stack creates its own bucket
    assert cfg.prefixes == (stack.SMOKE_PREFIX,)


def test_a_long_smoke_id_still_makes_valid_names() -> None:
    PipelineConfig.from_mapping(stack.smoke_context("imgsearch-smoke-" + "a" * 32))


@pytest.mark.parametrize(
    "name", ["ImageSearchPipeline", "imgsearch-smoke-", "imgsearch-smoke-Alice", "my-stack"]
)
def test_a_name_that_is_not_a_smoke_stack_name_is_refused(name: str) -> None:
    with pytest.raises(stack.SmokeStackError, match="imgsearch-smoke-<id>"):
        stack.check_stack_name(name)


def test_new_ids_are_unique_and_readable() -> None:
    first, second = stack.new_smoke_id("Alice Smith"), stack.new_smoke_id("Alice Smith")
    assert first != second
    assert first.startswith("alice-smith-")
    stack.check_stack_name(stack.STACK_PREFIX + first)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:4566", True),
        ("http://localhost:5000", True),
        ("http://[::1]:80", True),
        ("https://s3.us-east-1.amazonaws.com", False),
        ("https://127.0.0.1.example.com", False),
        (None, False),
    ],
)
def test_only_this_machine_counts_as_the_local_cloud(url: str | None, local: bool) -> None:
    assert stack.is_loopback(url) is local


# --------------------------------------------------------------------------- plan


def test_plan_records_a_new_stack_and_prints_its_deploy_args(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-ci") == 0
    args = capsys.readouterr().out.split()
    assert all(flag == "-c" for flag in args[:-2:2])  # cdk takes `-c key=value` as two words
    context = dict(a.split("=", 1) for a in args[1:-2:2])
    assert context["stack_name"] == "imgsearch-smoke-ci"
    assert context["vector_bucket_name"] == "imgsearch-smoke-ci-vectors"
    assert context["region"] == REGION
    assert args[-2:] == ["--tags", f"{stack.SMOKE_TAG}=ci"]
    record = stack.load_record(record_file)
    assert record is not None and record.stack_name == "imgsearch-smoke-ci"
    assert record.region == REGION
    # Planned again (a second `make smoke AWS=1`): the same stack, not a new one.
    assert _cli(record_file, "plan") == 0
    assert "stack_name=imgsearch-smoke-ci" in capsys.readouterr().out.split()


def test_plan_refuses_a_name_that_exists_but_is_not_recorded(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create("imgsearch-smoke-taken")
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-taken") == 2
    assert "refusing to deploy over it" in capsys.readouterr().err
    assert not record_file.exists()


def test_plan_refuses_a_second_stack_while_one_is_recorded(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-one") == 0
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-two") == 2
    assert "make smoke-destroy` first" in capsys.readouterr().err


def test_plan_refuses_the_operators_own_stack_name(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create("ImageSearchPipeline")
    assert _cli(tmp_path / "r.json", "plan", "--stack", "ImageSearchPipeline") == 2
    assert "never names your own stack" in capsys.readouterr().err


# --------------------------------------------------------------------------- run


def test_run_on_aws_refuses_a_stack_without_the_smoke_tag(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create("ImageSearchPipeline")  # the operator's stack, not tagged
    s3 = boto3.client("s3", region_name=REGION)
    before = s3.list_buckets()["Buckets"]
    assert _cli(tmp_path / "r.json", "run") == 2
    err = capsys.readouterr().err
    assert "'ImageSearchPipeline' is not a smoke stack" in err
    assert "no imgsearch:smoke tag" in err
    assert s3.list_buckets()["Buckets"] == before  # nothing was uploaded anywhere


def test_run_on_aws_refuses_a_smoke_stack_of_another_record(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-mine") == 0
    _create("imgsearch-smoke-mine", {stack.SMOKE_TAG: "someone-else"})
    capsys.readouterr()
    assert _cli(record_file, "run", "--aws") == 2
    assert "its imgsearch:smoke tag is 'someone-else'" in capsys.readouterr().err


def test_run_aws_needs_a_recorded_stack(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path / "r.json", "run", "--aws") == 2
    assert "no smoke stack recorded" in capsys.readouterr().err


# --------------------------------------------------------------------------- destroy


def test_destroy_without_a_record_touches_nothing(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _create("imgsearch-smoke-x", {stack.SMOKE_TAG: "x"})
    assert _cli(tmp_path / "r.json", "destroy") == 2
    assert "removes only a stack that `make smoke AWS=1` created" in capsys.readouterr().err
    assert _exists("imgsearch-smoke-x")


def test_destroy_refuses_a_recorded_name_whose_stack_is_not_tagged_as_ours(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-y") == 0
    _create("imgsearch-smoke-y")  # someone else's stack by that name, no tag
    assert _cli(record_file, "destroy") == 2
    assert "refusing to touch it" in capsys.readouterr().err
    assert _exists("imgsearch-smoke-y")
    assert record_file.exists()


def test_destroy_removes_the_recorded_stack_and_the_buckets_it_retains(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_file = tmp_path / "smoke-stack.json"
    assert _cli(record_file, "plan", "--stack", "imgsearch-smoke-z") == 0
    _create("imgsearch-smoke-z", {stack.SMOKE_TAG: "z"})
    _create("ImageSearchPipeline")  # the operator's stack: left alone
    s3 = boto3.client("s3", region_name=REGION)
    retained = stack.retained_resources(_cfn(), "imgsearch-smoke-z")[stack.BUCKET_TYPE]
    assert len(retained) == 2
    s3.put_object(Bucket=retained[0], Key="imgsearch-smoke/run/a.png", Body=b"x")

    assert _cli(record_file, "destroy") == 0

    assert not _exists("imgsearch-smoke-z")
    assert _exists("ImageSearchPipeline")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not names & set(retained)
    assert not record_file.exists()
    assert "removed stack imgsearch-smoke-z" in capsys.readouterr().out


def test_delete_bucket_empties_every_version_and_a_missing_bucket_is_already_gone(
    aws: None,
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="smoke-left")
    s3.put_bucket_versioning(Bucket="smoke-left", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2"):
        s3.put_object(Bucket="smoke-left", Key="a.jpg", Body=body)
    s3.delete_object(Bucket="smoke-left", Key="a.jpg")
    stack.delete_bucket(s3, "smoke-left")
    assert "smoke-left" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    stack.delete_bucket(s3, "smoke-left")  # NoSuchBucket: nothing left to do, no error
