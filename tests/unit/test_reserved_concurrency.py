"""The ``reserved_concurrency`` setting: follows ``embedder_concurrency`` unless set."""

from __future__ import annotations

import pytest

from imgsearch.config import ConfigError, PipelineConfig


def test_by_default_the_embedder_reserves_what_the_event_source_may_run() -> None:
    assert PipelineConfig().embedder_reserved_concurrency == 5
    assert PipelineConfig(embedder_concurrency=8).embedder_reserved_concurrency == 8


def test_zero_reserves_nothing_and_leaves_the_limit_to_the_event_source() -> None:
    cfg = PipelineConfig.from_mapping({"reserved_concurrency": "0"})
    assert cfg.reserved_concurrency == 0
    assert cfg.embedder_reserved_concurrency == 0
    assert cfg.embedder_concurrency == 5  # the event source's maximum concurrency stays


def test_an_explicit_reservation_at_or_above_the_event_sources_maximum() -> None:
    assert PipelineConfig(reserved_concurrency=5).embedder_reserved_concurrency == 5
    assert PipelineConfig(reserved_concurrency=20).embedder_reserved_concurrency == 20


@pytest.mark.parametrize("value", [1, 4])
def test_a_reservation_below_the_event_sources_maximum_is_refused(value: int) -> None:
    # The pollers would invoke more copies than may run: the throttled messages return
    # to the queue and count towards the DLQ's maxReceiveCount.
    with pytest.raises(ConfigError) as err:
        PipelineConfig(reserved_concurrency=value)
    message = str(err.value)
    assert "'reserved_concurrency'" in message
    assert "reserved_concurrency=0" in message and "embedder_concurrency" in message


def test_negative_values_other_than_the_default_are_refused() -> None:
    with pytest.raises(ConfigError, match="'reserved_concurrency'"):
        PipelineConfig(reserved_concurrency=-2)


def test_the_setting_travels_in_the_lambda_environment() -> None:
    cfg = PipelineConfig(reserved_concurrency=0)
    env = cfg.to_lambda_env()
    assert env["IMGSEARCH_RESERVED_CONCURRENCY"] == "0"
    assert PipelineConfig.from_env(env) == cfg
