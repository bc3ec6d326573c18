"""Model ids: a foundation model or a cross-Region inference profile in front of one."""

from __future__ import annotations

import pytest

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.models import (
    INFERENCE_PROFILE_PREFIXES,
    MARENGO_3,
    MODELS,
    NOVA_MME,
    ModelSpec,
    UnknownModelError,
    parse_model_id,
)

MARENGO_EU = "eu.twelvelabs.marengo-embed-3-0-v1:0"


def test_a_foundation_model_id_has_no_profile() -> None:
    ref = parse_model_id(NOVA_MME.model_id)
    assert (ref.model_id, ref.profile, ref.base_id, ref.spec) == (
        NOVA_MME.model_id,
        None,
        NOVA_MME.model_id,
        NOVA_MME,
    )
    assert not ref.is_profile


@pytest.mark.parametrize("prefix", INFERENCE_PROFILE_PREFIXES)
@pytest.mark.parametrize("spec", list(MODELS.values()))
def test_a_profile_id_names_its_prefix_and_the_model_behind_it(
    prefix: str, spec: ModelSpec
) -> None:
    profile_id = f"{prefix}.{spec.model_id}"
    ref = parse_model_id(profile_id)
    assert (ref.model_id, ref.profile, ref.spec) == (profile_id, prefix, spec)
    assert ref.base_id == spec.model_id
    assert ref.is_profile


@pytest.mark.parametrize(
    "model_id",
    [
        "amazon.titan-embed-image-v1",  # a model the pipeline does not know
        "eu.amazon.titan-embed-image-v1",  # a profile in front of one
        "mars.twelvelabs.marengo-embed-3-0-v1:0",  # no such profile prefix
        "eu.eu.twelvelabs.marengo-embed-3-0-v1:0",
        "",
    ],
)
def test_unknown_ids_are_rejected_with_the_allowed_values(model_id: str) -> None:
    with pytest.raises(UnknownModelError) as err:
        parse_model_id(model_id)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    for base in MODELS:
        assert base in message
    assert "eu." in message and "global." in message


def test_config_accepts_an_inference_profile_and_finds_the_model_from_the_base_id() -> None:
    cfg = PipelineConfig(model_id=MARENGO_EU, dimension=512)
    assert cfg.model is MARENGO_3
    assert cfg.model_ref.profile == "eu"
    assert cfg.model_ref.model_id == MARENGO_EU  # what InvokeModel is called with
    assert PipelineConfig.from_env(cfg.to_lambda_env()) == cfg


def test_config_still_rejects_a_dimension_the_profiles_model_cannot_produce() -> None:
    with pytest.raises(ConfigError) as err:
        PipelineConfig(model_id=MARENGO_EU, dimension=1024)
    assert "'dimension'" in str(err.value) and "512" in str(err.value)
    with pytest.raises(ConfigError, match="256, 384, 1024, 3072"):
        PipelineConfig(model_id=f"us.{NOVA_MME.model_id}", dimension=512)


def test_config_rejects_an_unknown_id_naming_the_key_and_the_allowed_values() -> None:
    with pytest.raises(ConfigError) as err:
        PipelineConfig(model_id="eu.amazon.titan-embed-image-v1")
    message = str(err.value)
    assert "'model_id'" in message
    assert NOVA_MME.model_id in message and MARENGO_3.model_id in message
