"""The search API's ``search_*`` settings: read like every key, refused with one clear line."""

from __future__ import annotations

import pytest

from imgsearch.config import ConfigError, PipelineConfig

POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123"


def test_defaults_are_iam_auth_and_a_low_throttle() -> None:
    cfg = PipelineConfig()
    assert (cfg.search_api, cfg.search_auth, cfg.search_cors_origins) == (True, "iam", ())
    assert (cfg.search_throttle_rate, cfg.search_throttle_burst) == (5, 10)


def test_settings_read_from_context_strings_and_travel_to_the_lambda() -> None:
    cfg = PipelineConfig.from_mapping(
        {
            "search_api": "false",
            "search_cors_origins": "https://shop.example.com,http://localhost:3000",
            "search_throttle_rate": "20",
        }
    )
    assert cfg.search_api is False
    assert cfg.search_cors_origins == ("https://shop.example.com", "http://localhost:3000")
    assert PipelineConfig.from_env(cfg.to_lambda_env()) == cfg


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"search_auth": "apikey"}, "config key 'search_auth': 'apikey' is not allowed"),
        ({"search_cors_origins": "shop.example.com"}, "'shop.example.com' is not an origin"),
        ({"search_cors_origins": "https://a.com/path"}, "(no path)"),
        ({"search_user_pool_arn": "pool-1", "search_auth": "cognito"}, "not a Cognito user pool"),
        ({"search_user_pool_arn": POOL, "search_auth": "cognito"}, "needs the app client ids"),
        (
            {"search_user_pool_arn": POOL, "search_user_pool_client_ids": "a"},
            "use search_auth=cognito",
        ),
        ({"search_throttle_rate": "0"}, "'search_throttle_rate': must be 1..10000"),
        ({"search_throttle_burst": "6000"}, "'search_throttle_burst': must be 1..5000"),
        ({"search_presign_seconds": "86400"}, "'search_presign_seconds': must be 1..3600"),
        ({"search_timeout_seconds": "30"}, "must be 1..29 (API Gateway waits at most 30 s"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(values: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_mapping(values)
    assert words in str(caught.value)


def test_an_imported_pool_with_its_clients_is_accepted() -> None:
    cfg = PipelineConfig.from_mapping(
        {
            "search_auth": "cognito",
            "search_user_pool_arn": POOL,
            "search_user_pool_client_ids": "a,b",
        }
    )
    assert cfg.search_user_pool_client_ids == ("a", "b")
