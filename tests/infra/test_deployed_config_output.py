"""The stack publishes the settings its Lambdas run with, as one ``DeployedConfig`` output.

The scripts read it instead of the local ``cdk.json`` (issue 11, point 3): a stack
deployed with ``-c message_groups=128`` must say 128, as a plain string that fits
CloudFormation's output size.
"""

from __future__ import annotations

import json

import pytest

from imgsearch.blueprint import (
    DEPLOYED_FIELDS,
    OUTPUT_VALUE_MAX_BYTES,
    deployed_config_json,
    parse_deployed_config,
)
from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.contract import OUTPUTS
from tests.infra.conftest import SynthFn, cdk_context


def test_output_carries_the_deployed_settings(synth: SynthFn) -> None:
    s = synth(message_groups=128, prefixes='["photos/","My Photos/"]')
    value = s.raw["Outputs"][OUTPUTS.deployed_config]["Value"]
    assert isinstance(value, str)  # no token: the scripts parse it as is
    assert len(value.encode()) <= OUTPUT_VALUE_MAX_BYTES
    deployed = parse_deployed_config(value)
    assert set(deployed) == set(DEPLOYED_FIELDS)
    assert deployed["message_groups"] == 128
    assert deployed["prefixes"] == ("photos/", "My Photos/")
    cfg = PipelineConfig.from_mapping(
        cdk_context(message_groups=128, prefixes=["photos/", "My Photos/"])
    )
    assert value == deployed_config_json(cfg)
    assert json.loads(value)["model_id"] == cfg.model_id


def test_settings_too_large_for_an_output_fail_synth() -> None:
    many = tuple(f"very/long/prefix/number/{i:04d}/" for i in range(200))
    with pytest.raises(ConfigError, match="4096-byte CloudFormation output limit"):
        deployed_config_json(PipelineConfig(prefixes=many))
