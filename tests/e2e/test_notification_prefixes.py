"""Notification filters with special characters, matched the way S3 matches them.

S3 compares a filter with the key as its events carry it (URL-encoded: space -> ``+``,
other special characters percent-encoded), so the stack must write encoded filter
values, and the local cloud must drop events for a filter written raw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from imgsearch.config import load_config
from imgsearch.messages import vector_key
from localcloud.cloud import LocalCloud
from localcloud.samples import encode, photo
from tests.e2e.conftest import assert_accounted, upload

pytestmark = pytest.mark.e2e

KEYS = ("My Photos/a.jpg", "fotos/año/b.jpg")


@pytest.fixture
def services() -> Iterator[LocalCloud]:
    """The local cloud's services without the Lambda runtime: enough to configure S3."""
    with LocalCloud.start(load_config(), runtime=False) as cloud:
        yield cloud


def test_prefixes_with_a_space_and_unicode_produce_live_events(
    make_cloud: Callable[..., LocalCloud],
) -> None:
    cloud = make_cloud(prefixes=["My Photos/", "fotos/año/"])
    for i, key in enumerate(KEYS):
        upload(cloud, key, encode(photo(("coffee", "rocket")[i], 128)))
    upload(cloud, "elsewhere/c.jpg", encode(photo("retina", 128)))  # under no prefix
    report = assert_accounted(cloud)
    bucket = cloud.resources.source_bucket
    assert cloud.vector_keys() == {vector_key(bucket, key) for key in KEYS}
    assert report.vectors == 2


def test_a_filter_written_raw_matches_nothing(make_cloud: Callable[..., LocalCloud]) -> None:
    cloud = make_cloud(prefixes=["My Photos/"])
    s3, bucket = cloud.client("s3"), cloud.resources.source_bucket
    configs = s3.get_bucket_notification_configuration(Bucket=bucket)
    raw: list[Any] = []  # the same filters, decoded: 'My Photos/' as the key is written
    for c in configs["LambdaFunctionConfigurations"]:
        rules = [
            {"Name": r["Name"], "Value": unquote_plus(r["Value"])}
            for r in c["Filter"]["Key"]["FilterRules"]
        ]
        raw.append({**c, "Filter": {"Key": {"FilterRules": rules}}})
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"LambdaFunctionConfigurations": raw}
    )
    upload(cloud, KEYS[0], encode(photo("coffee", 128)))
    cloud.wait_idle(30)
    assert cloud.s3_events is not None and cloud.s3_events.stats["events"] == 0
    assert cloud.vector_keys() == set()


def _lambda_config(arn: str, event: str, **rules: str) -> Any:
    return {
        "LambdaFunctionArn": arn,
        "Events": [event],
        "Filter": {"Key": {"FilterRules": [{"Name": k, "Value": v} for k, v in rules.items()]}},
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("s3:ObjectCreated:*", "a/", ".jpg"), ("s3:ObjectCreated:*", "a/b/", ".jpg")),
        (("s3:ObjectCreated:*", "a/", "jpg"), ("s3:ObjectCreated:Put", "", "pg")),
    ],
)
def test_overlapping_filters_for_one_event_type_are_refused(
    services: LocalCloud, first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    s3, arn = services.client("s3"), _router_arn(services)
    configs = [
        _lambda_config(arn, event, **({"prefix": p} if p else {}), suffix=s)
        for event, p, s in (first, second)
    ]
    with pytest.raises(ClientError) as raised:
        s3.put_bucket_notification_configuration(
            Bucket=services.resources.source_bucket,
            NotificationConfiguration={"LambdaFunctionConfigurations": configs},
        )
    assert raised.value.response["Error"]["Code"] == "InvalidArgument"
    assert raised.value.response["Error"]["Message"] == (
        "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules "
        "if the prefixes are overlapping for the same event type."
    )


def test_overlaps_across_event_types_or_disjoint_suffixes_are_accepted(
    services: LocalCloud,
) -> None:
    s3, arn = services.client("s3"), _router_arn(services)
    configs = [
        _lambda_config(arn, "s3:ObjectCreated:*", prefix="a/", suffix=".jpg"),
        _lambda_config(arn, "s3:ObjectCreated:*", prefix="a/", suffix=".png"),
        _lambda_config(arn, "s3:ObjectRemoved:*", prefix="a/", suffix=".jpg"),
    ]
    s3.put_bucket_notification_configuration(
        Bucket=services.resources.source_bucket,
        NotificationConfiguration={"LambdaFunctionConfigurations": configs},
    )


def _router_arn(cloud: LocalCloud) -> str:
    r = cloud.resources
    return f"arn:aws:lambda:{r.region}:{r.account_id}:function:{r.router_function}"
