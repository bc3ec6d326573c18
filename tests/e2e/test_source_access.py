"""S3 refusing the source bucket's reads: the operator is told which setting is missing.

S3 answers a read of an SSE-KMS object without ``kms:Decrypt`` (and a wrong
``ExpectedBucketOwner``) with a plain 403 ``AccessDenied``. The embedder retries it as a
transient failure, so the object ends in the DLQ with no vector; ``dlq list`` and
``verify`` must both name ``source_kms_key_arn`` from the failure's detail (issue 11).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from imgsearch.config import load_config
from imgsearch.messages import vector_key
from localcloud.cloud import LocalCloud
from tests.e2e.cli_harness import photo_jpeg, run_cli
from tests.e2e.conftest import assert_accounted, upload

pytestmark = pytest.mark.e2e

Capsys = pytest.CaptureFixture[str]
SEALED = "photos/sealed.jpg"
"""An object S3 refuses to read, as an SSE-KMS object without kms:Decrypt."""


@pytest.fixture
def services() -> Iterator[LocalCloud]:
    """The local cloud's services only: no Lambda function runs, nothing else calls."""
    with LocalCloud.start(load_config(), runtime=False) as cloud:
        yield cloud


def test_an_s3_access_fault_reaches_botocore_as_s3s_own_error(services: LocalCloud) -> None:
    s3, bucket = services.client("s3"), services.resources.source_bucket
    s3.put_object(Bucket=bucket, Key=SEALED, Body=b"x")
    s3.put_object(Bucket=bucket, Key="photos/open.jpg", Body=b"y")
    services.faults.s3_error("GetObject", "AccessDenied", match=SEALED)
    services.faults.s3_error("HeadObject", "AccessDenied", match=SEALED)

    with pytest.raises(ClientError) as got:
        s3.get_object(Bucket=bucket, Key=SEALED)
    assert got.value.response["Error"] == {"Code": "AccessDenied", "Message": "Access Denied"}
    assert got.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as head:  # a HEAD answer has no body: the status only
        s3.head_object(Bucket=bucket, Key=SEALED)
    assert head.value.response["Error"]["Code"] == "403"
    assert s3.get_object(Bucket=bucket, Key="photos/open.jpg")["Body"].read() == b"y"


def test_verify_and_dlq_list_name_the_kms_setting_of_a_refused_read(
    make_cloud: Callable[..., LocalCloud], capsys: Capsys
) -> None:
    cloud = make_cloud(max_receive_count=2)
    bucket = cloud.resources.source_bucket
    rule = cloud.faults.s3_error("GetObject", "AccessDenied", match=SEALED)
    upload(cloud, SEALED, photo_jpeg("rocket", 96))
    upload(cloud, "photos/fine.jpg", photo_jpeg("coffee", 96))
    report = assert_accounted(cloud)
    assert (report.vectors, report.in_dlq) == (1, 1) and rule.fired >= 2
    uri = f"s3://{bucket}/{SEALED}"

    listed = run_cli(cloud, capsys, "dlq", "list", "--output", "json")
    assert listed.code == 0, listed.err
    (entry,) = json.loads(listed.out)["messages"]
    assert entry["uri"] == uri and entry["last_error"]["reason"] == "s3_access_denied"
    assert "set source_kms_key_arn" in entry["why"]
    assert "set source_kms_key_arn" in run_cli(cloud, capsys, "dlq", "list").out

    found = run_cli(cloud, capsys, "verify", "--all", "--output", "json")
    assert found.code == 1, found.err  # a vector is missing: not a recorded outcome
    checked = json.loads(found.out)
    assert checked["counts"]["missing"] == 1 and checked["counts"]["failed"] == 0
    (finding,) = checked["findings"]
    assert finding["uri"] == uri and finding["vector_key"] == vector_key(bucket, SEALED)
    assert finding["detail"].startswith("no vector; the last attempt failed: s3_access_denied")
    assert "set source_kms_key_arn" in finding["detail"]
    table = run_cli(cloud, capsys, "verify", "--all")
    assert "set source_kms_key_arn" in table.out

    cloud.faults.clear()  # the key is granted: the repair goes through
    fixed = run_cli(cloud, capsys, "verify", "--all", "--fix")
    assert fixed.code == 0 and "enqueued 1 repair message(s)" in fixed.out
    cloud.wait_idle(60)
    assert vector_key(bucket, SEALED) in cloud.vector_keys()
