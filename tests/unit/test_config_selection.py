"""PipelineConfig validation and environment round trip; key selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgsearch.config import ConfigError, PipelineConfig, load_config
from imgsearch.models import MARENGO_3, NOVA_MME
from imgsearch.selection import KeySelection


def test_defaults_are_valid_and_use_nova() -> None:
    cfg = PipelineConfig()
    assert cfg.model is NOVA_MME
    assert cfg.dimension in NOVA_MME.dimensions
    assert cfg.batch_size == 1


def test_marengo_needs_512_dimensions() -> None:
    cfg = PipelineConfig(model_id=MARENGO_3.model_id, dimension=512)
    assert cfg.model is MARENGO_3
    with pytest.raises(ConfigError) as err:
        PipelineConfig(model_id=MARENGO_3.model_id, dimension=1024)
    assert "'dimension'" in str(err.value) and "512" in str(err.value)


def test_nova_rejects_a_dimension_it_cannot_produce() -> None:
    with pytest.raises(ConfigError, match="256, 384, 1024, 3072"):
        PipelineConfig(dimension=512)


def test_unknown_model_is_rejected_with_the_allowed_list() -> None:
    with pytest.raises(ConfigError, match="model_id"):
        PipelineConfig(model_id="amazon.titan-embed-image-v1")


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"batch_size": 11}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"embedder_concurrency": 1}, "embedder_concurrency"),
        ({"queue_name": "plain-queue"}, "queue_name"),
        ({"message_groups": 0}, "message_groups"),
        ({"architecture": "sparc"}, "architecture"),
        ({"suffixes": ("jpg",)}, "suffixes"),
        ({"log_retention_days": 8}, "log_retention_days"),
    ],
)
def test_invalid_values_name_the_key(changes: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        PipelineConfig(**changes)  # type: ignore[arg-type]
    assert repr(key) in str(err.value)


def test_from_mapping_coerces_context_strings_and_rejects_typos() -> None:
    cfg = PipelineConfig.from_mapping(
        {"dimension": "3072", "prefixes": "a/,b/", "source_bucket_versioned": "yes"}
    )
    assert cfg.dimension == 3072
    assert cfg.prefixes == ("a/", "b/")
    assert cfg.source_bucket_versioned is True
    assert PipelineConfig.from_mapping({"prefixes": '["x/"]'}).prefixes == ("x/",)
    assert PipelineConfig.from_mapping({"@aws-cdk/core:flag": True, "aws:cdk:x": 1}).dimension
    with pytest.raises(ConfigError, match="unknown config key 'dimenson'"):
        PipelineConfig.from_mapping({"dimenson": 3072})
    with pytest.raises(ConfigError, match="'dimension'"):
        PipelineConfig.from_mapping({"dimension": "lots"})


def test_lambda_env_round_trips() -> None:
    cfg = PipelineConfig(
        dimension=3072, prefixes=("cats/", "dogs/"), batch_size=4, queue_url="https://q"
    )
    env = cfg.to_lambda_env()
    assert env["IMGSEARCH_DIMENSION"] == "3072"
    assert env["POWERTOOLS_SERVICE_NAME"] == cfg.service_name
    assert PipelineConfig.from_env(env) == cfg


def test_load_config_reads_cdk_json_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "x", "context": {"dimension": 384, "batch_size": 2}}))
    cfg = load_config(path, {"batch_size": 3})
    assert (cfg.dimension, cfg.batch_size) == (384, 3)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)


def test_selection_prefix_exact_suffix_case_insensitive() -> None:
    sel = KeySelection(prefixes=("cats/", "dogs/"), suffixes=(".jpg", ".png"))
    assert sel.matches("cats/a.JPG")
    assert sel.matches("dogs/x/y.png")
    assert not sel.matches("Cats/a.jpg")
    assert sel.reason_skipped("birds/a.jpg") == "prefix"
    assert sel.reason_skipped("cats/a.txt") == "suffix"
    assert sel.reason_skipped("cats/a.jpg") is None


def test_selection_from_default_config_takes_the_whole_bucket() -> None:
    sel = KeySelection.from_config(PipelineConfig())
    for key in ("a.jpg", "x/y.jpeg", "b.PNG", "c.gif", "d.webp"):
        assert sel.matches(key)
    assert sel.reason_skipped("notes.txt") == "suffix"
