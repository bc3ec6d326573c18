"""S3 notification filters: case variants per prefix, and no overlaps S3 would reject."""

from __future__ import annotations

import pytest

from imgsearch.config import ConfigError, PipelineConfig
from infra.notifications import KeyFilter, notification_filters, suffix_variants


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
