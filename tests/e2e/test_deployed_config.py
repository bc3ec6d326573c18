"""The scripts run with the deployed settings, not the local cdk.json's (issue 11, point 3).

The local cloud publishes the stack's ``DeployedConfig`` output as the stack does. Built
with ``message_groups=128`` while the repository's cdk.json says 64, the backfill must
send each object's message to the group the router would use (128 groups), and refuse
``-c message_groups=64`` naming both values instead of ordering messages differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgsearch.blueprint import parse_deployed_config
from imgsearch.config import load_config
from imgsearch.contract import OUTPUTS
from imgsearch.messages import group_id
from localcloud.cloud import LocalCloud
from scripts.backfill.cli import main as backfill
from tests.e2e.cli_harness import run_cli
from tests.e2e.conftest import E2E_CONFIG, upload
from tests.unit import backfill_support as bs

pytestmark = pytest.mark.e2e

KEYS = [f"photos/{i}.jpg" for i in range(12)]


@pytest.fixture
def cloud_128(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    monkeypatch.chdir(tmp_path)  # the backfill's checkpoint goes here
    monkeypatch.delenv("IMGSEARCH_CDK_JSON", raising=False)
    assert load_config().message_groups == 64  # what the scripts would read today
    cfg = load_config(overrides={**E2E_CONFIG, "message_groups": 128})
    # Services only: the messages stay in the queue, where their groups can be read.
    cloud = LocalCloud.start(cfg, runtime=False)
    s3 = cloud.client("s3")
    source, inventory = cloud.resources.source_bucket, cloud.resources.inventory_bucket
    for key in KEYS:
        upload(cloud, key, b"\xff\xd8\xff" + key.encode())
    listed = s3.list_objects_v2(Bucket=source)["Contents"]
    objs = [bs.Obj(o["Key"], size=o["Size"], etag=o["ETag"].strip('"')) for o in listed]
    bs.report(objs, source=source, dest_bucket=inventory, dest_prefix="").put_to(s3, inventory)
    yield cloud
    cloud.close()


def _groups(cloud: LocalCloud) -> dict[str, str]:
    """{key: MessageGroupId} of every message in the queue."""
    sqs, seen = cloud.client("sqs"), {}
    for _ in range(20):
        got = sqs.receive_message(
            QueueUrl=cloud.resources.queue_url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["MessageGroupId"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        for m in got:
            seen[json.loads(m["Body"])["key"]] = m["Attributes"]["MessageGroupId"]
        if len(seen) == len(KEYS):
            break
    return seen


def test_the_stack_publishes_its_settings(cloud_128: LocalCloud) -> None:
    stacks = cloud_128.client("cloudformation").describe_stacks(StackName=cloud_128.cfg.stack_name)[
        "Stacks"
    ]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}
    deployed = parse_deployed_config(outputs[OUTPUTS.deployed_config])
    assert deployed["message_groups"] == 128
    assert deployed["index_name"] == cloud_128.cfg.index_name


def test_backfill_uses_the_deployed_message_groups(
    cloud_128: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    with cloud_128.environ():
        code = backfill(["latest", "--progress", "none"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["sent"] == len(KEYS)
    assert "message_groups: using the deployed 128" in err
    bucket = cloud_128.resources.source_bucket
    groups = _groups(cloud_128)
    assert groups == {key: group_id(bucket, key, 128) for key in KEYS}
    # At least one key lands elsewhere with 64 groups, so this test tells them apart.
    assert any(group_id(bucket, key, 64) != groups[key] for key in KEYS)


def test_backfill_refuses_a_local_value_that_differs(
    cloud_128: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    with cloud_128.environ():
        code = backfill(["latest", "--progress", "none", "-c", "message_groups=64"])
    _, err = capsys.readouterr()
    assert code == 2
    [line] = [x for x in err.splitlines() if x.strip()]
    assert "message_groups: deployed 128, local 64; drop -c message_groups or redeploy" in line
    assert cloud_128.snapshot().queued == 0  # nothing was sent
    # The same value as deployed is no conflict.
    with cloud_128.environ():
        code = backfill(["latest", "--progress", "none", "-c", "message_groups=128"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["sent"] == len(KEYS)


def test_imgsearch_refuses_and_names_the_cdk_json(
    cloud_128: LocalCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"message_groups": 32}}))
    run = run_cli(cloud_128, capsys, "status", "--cdk-json", str(cdk_json))
    run.one_line_error(
        f"message_groups: deployed 128, local 32; drop message_groups from {cdk_json}"
    )
    run = run_cli(cloud_128, capsys, "verify", "--all", "--fix", "-c", "message_groups=64")
    run.one_line_error("message_groups: deployed 128, local 64; drop -c message_groups")
    run = run_cli(cloud_128, capsys, "search", "--text", "red", "-c", "dimension=3072")
    run.one_line_error("dimension: deployed 1024, local 3072; drop -c dimension or redeploy")
    assert cloud_128.snapshot().queued == 0  # verify --fix enqueued nothing
