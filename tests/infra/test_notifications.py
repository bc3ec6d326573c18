"""S3 notification filters: case variants per prefix, and no overlaps S3 would reject."""

from __future__ import annotations

import pytest

from imgsearch.config import ConfigError, PipelineConfig
from infra.notifications import KeyFilter, notification_filters, suffix_variants
from tests.infra.conftest import SynthFn


def test_each_suffix_in_lower_and_upper_case_once() -> None:
    assert suffix_variants((".jpg", ".JPG", ".Png")) == (".jpg", ".JPG", ".png", ".PNG")


def test_one_filter_per_prefix_and_suffix_variant() -> None:
    cfg = PipelineConfig(prefixes=("cats/", "dogs/"), suffixes=(".jpg", ".webp"))
    assert notification_filters(cfg) == tuple(
        KeyFilter(p, s) for p in ("cats/", "dogs/") for s in (".jpg", ".JPG", ".webp", ".WEBP")
    )


def test_duplicate_prefixes_collapse() -> None:
    cfg = PipelineConfig(prefixes=("a/", "a/"), suffixes=(".png",))
    assert notification_filters(cfg) == (KeyFilter("a/", ".png"), KeyFilter("a/", ".PNG"))


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        (("photos/", "photos/2024/"), "'photos/2024/' lies inside 'photos/'"),
        (("", "photos/"), "'photos/' lies inside ''"),
    ],
)
def test_nested_prefixes_are_rejected(prefixes: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match="config key 'prefixes'") as raised:
        notification_filters(PipelineConfig(prefixes=prefixes))
    assert message in str(raised.value)


def test_prefixes_that_merely_share_a_start_are_fine() -> None:
    cfg = PipelineConfig(prefixes=("photos/a", "photos/b"), suffixes=(".gif",))
    assert len(notification_filters(cfg)) == 4


def test_suffixes_ending_one_another_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"config key 'suffixes': '\.jpg' and '\.thumb\.jpg'"):
        notification_filters(PipelineConfig(suffixes=(".jpg", ".thumb.jpg")))


def test_filter_values_are_url_encoded_as_s3_matches_them() -> None:
    # S3 matches filters against the key as its events carry it: space -> '+', other
    # special characters percent-encoded (UTF-8); a raw 'My Photos/' never matches.
    cfg = PipelineConfig(prefixes=("My Photos/", "fotos/año/", "a+b/"), suffixes=(".jpg",))
    assert {f.prefix for f in notification_filters(cfg)} == {
        "My+Photos/",
        "fotos/a%C3%B1o/",
        "a%2Bb/",
    }


def test_suffixes_are_encoded_after_their_case_variants() -> None:
    cfg = PipelineConfig(suffixes=(".ñ",))
    assert {f.suffix for f in notification_filters(cfg)} == {".%C3%B1", ".%C3%91"}


def test_the_stack_writes_encoded_prefixes(synth: SynthFn) -> None:
    synthesized = synth(prefixes="My Photos/,fotos/año/")
    _, notifications = synthesized.one("Custom::S3BucketNotifications")
    configs = notifications["Properties"]["NotificationConfiguration"]
    prefixes = {
        r["Value"]
        for c in configs["LambdaFunctionConfigurations"]
        for r in c["Filter"]["Key"]["FilterRules"]
        if r["Name"] == "prefix"
    }
    assert prefixes == {"My+Photos/", "fotos/a%C3%B1o/"}
