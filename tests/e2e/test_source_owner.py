"""The scripts pin the source bucket's owner as the embedder does (``ExpectedBucketOwner``).

A deployment with ``source_bucket_owner`` publishes it in ``DeployedConfig``; ``verify``,
``delete``, ``dlq list`` and the web app's thumbnail and folder calls then send it on
every request to the source bucket, so a bucket of that name re-created by another
account is refused by S3 instead of being read. The requests are read where they leave
botocore (a ``before-send`` hook every new botocore session registers); the local S3 refuses
an owner other than its one account, as S3 does (the last test).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import botocore.exceptions
import botocore.handlers
import pytest

from imgsearch.messages import vector_key
from localcloud.cloud import LocalCloud
from localcloud.services.front import ACCOUNT_ID
from tests.e2e.cli_harness import photo_jpeg, run_cli
from tests.e2e.conftest import assert_accounted, upload
from tests.e2e.web_harness import fetch, get, serving

pytestmark = pytest.mark.e2e

Capsys = pytest.CaptureFixture[str]
OWNER_HEADER = "x-amz-expected-bucket-owner"


class Sent:
    """Every S3 request botocore sends in this process: (method, url, owner header)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []

    def record(self, request: Any, **_: Any) -> None:
        owner = request.headers.get(OWNER_HEADER)
        if isinstance(owner, bytes):
            owner = owner.decode()
        self.requests.append((request.method, request.url, owner))

    def to(self, bucket: str) -> list[tuple[str, str, str | None]]:
        seen, self.requests = [r for r in self.requests if bucket in r[1]], []
        return seen


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    recorder = Sent()
    monkeypatch.setattr(
        botocore.handlers,
        "BUILTIN_HANDLERS",
        [*botocore.handlers.BUILTIN_HANDLERS, ("before-send.s3", recorder.record)],
    )
    return recorder


def test_scripts_send_the_deployed_owner_on_source_bucket_calls(
    make_cloud: Callable[..., LocalCloud], capsys: Capsys, sent: Sent, tmp_path: Path
) -> None:
    cloud = make_cloud(source_bucket_owner=ACCOUNT_ID)
    bucket = cloud.resources.source_bucket
    upload(cloud, "photos/a.jpg", photo_jpeg("rocket", 96))
    upload(cloud, "photos/b.jpg", photo_jpeg("coffee", 96))
    assert_accounted(cloud)
    sent.to(bucket)

    for argv in (
        ["verify", "--all"],  # ListObjectsV2
        ["verify", "--sample", "5"],  # ListObjectsV2, a HeadObject per sampled vector
        ["delete", f"s3://{bucket}/photos/a.jpg"],  # HeadObject: does the object remain?
        ["delete", "--prefix", f"s3://{bucket}/photos/", "--yes"],  # ListObjectsV2
    ):
        run = run_cli(cloud, capsys, *argv)
        assert run.code in (0, 1), run.err
        calls = sent.to(bucket)
        assert calls, argv
        assert {owner for _, _, owner in calls} == {ACCOUNT_ID}, (argv, calls)
        if argv == ["verify", "--sample", "5"]:
            assert "HEAD" in {method for method, _, _ in calls}

    with serving(cloud, tmp_path / "thumbs") as served:
        sent.to(bucket)
        thumb = fetch(served, "/thumb?" + urlencode({"bucket": bucket, "key": "photos/b.jpg"}))
        assert thumb.status_code == 200, thumb.text
        folders = get(served, "/api/folders", under="")
        assert folders.status_code == 200 and folders.json()["folders"] == ["photos/"]
        calls = sent.to(bucket)
    assert {method for method, _, _ in calls} >= {"GET", "HEAD"}
    assert {owner for _, _, owner in calls} == {ACCOUNT_ID}, calls


def test_dlq_list_sends_the_deployed_owner_on_its_head_object(
    make_cloud: Callable[..., LocalCloud], capsys: Capsys, sent: Sent
) -> None:
    cloud = make_cloud(source_bucket_owner=ACCOUNT_ID, max_receive_count=2)
    bucket = cloud.resources.source_bucket
    key = "photos/doomed.jpg"
    rule = cloud.faults.s3vectors_error(
        "PutVectors", "ServiceUnavailableException", match=vector_key(bucket, key)
    )
    upload(cloud, key, photo_jpeg("astronaut", 96))
    assert assert_accounted(cloud).in_dlq == 1 and rule.fired
    sent.to(bucket)
    run = run_cli(cloud, capsys, "dlq", "list", "--output", "json")
    assert run.code == 0, run.err
    calls = sent.to(bucket)
    assert [(method, owner) for method, _, owner in calls] == [("HEAD", ACCOUNT_ID)], calls
    assert json.loads(run.out)["messages"][0]["object_state"] == "exists"


def test_without_a_configured_owner_the_scripts_pin_the_stacks_account(
    cloud: LocalCloud, capsys: Capsys, sent: Sent
) -> None:
    """The stack's default: the Lambdas pin the deploying account; the scripts read it
    from the stack's id, so a same-named bucket of another account is never read."""
    bucket = cloud.resources.source_bucket
    upload(cloud, "photos/a.jpg", photo_jpeg("rocket", 96))
    assert_accounted(cloud)
    sent.to(bucket)
    assert run_cli(cloud, capsys, "verify", "--sample", "5").code == 0
    calls = sent.to(bucket)
    assert calls and {owner for _, _, owner in calls} == {ACCOUNT_ID}


def test_the_local_s3_refuses_a_bucket_owner_that_is_not_the_buckets_as_s3_does(
    cloud: LocalCloud,
) -> None:
    """S3 answers 403 AccessDenied when ExpectedBucketOwner names another account: so
    must the local cloud, or a wrong pin would pass every test here."""
    s3 = cloud.client("s3")
    bucket = cloud.resources.source_bucket
    s3.put_object(Bucket=bucket, Key="photos/a.jpg", Body=photo_jpeg("rocket", 64))
    s3.head_object(Bucket=bucket, Key="photos/a.jpg", ExpectedBucketOwner=ACCOUNT_ID)
    for call in (
        lambda: s3.head_object(
            Bucket=bucket, Key="photos/a.jpg", ExpectedBucketOwner="111122223333"
        ),
        lambda: s3.get_object(
            Bucket=bucket, Key="photos/a.jpg", ExpectedBucketOwner="111122223333"
        ),
        lambda: s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="111122223333"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        error = raised.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert error["Error"]["Code"] in ("AccessDenied", "403")  # HEAD answers carry no body
