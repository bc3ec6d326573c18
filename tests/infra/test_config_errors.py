"""Invalid config fails the synth with a one-line message naming the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from imgsearch.config import ConfigError
from infra.app import build_app
from tests.infra.conftest import REPO_ROOT, cdk_context


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"dimension": "1000"}, ["'dimension'", "256, 384, 1024, 3072"]),
        ({"architecture": "arm"}, ["'architecture'", "arm64, x86_64"]),
        (
            {"visibility_timeout_seconds": "300"},
            ["'visibility_timeout_seconds'", "'embedder_timeout_seconds'", "360 s"],
        ),
        (
            {"embedder_timeout_seconds": "200"},
            ["'visibility_timeout_seconds'", "'embedder_timeout_seconds'", "1200 s"],
        ),
        ({"prefixes": "photos/,photos/2024/"}, ["'prefixes'", "'photos/2024/'"]),
        ({"prefixes": "photos/,"}, ["'prefixes'", "''"]),
        ({"suffixes": ".jpg,.thumb.jpg"}, ["'suffixes'", "'.jpg'", "'.thumb.jpg'"]),
        ({"index_name": "My_Images"}, ["'index_name'"]),
        ({"queue_name": "embed"}, ["'queue_name'", ".fifo"]),
        ({"dimenson": "3072"}, ["'dimenson'", "known keys"]),
    ],
)
def test_invalid_config_is_rejected_naming_the_key(
    overrides: dict[str, Any], names: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_app(cdk_context(**overrides))
    message = str(raised.value)
    assert "\n" not in message
    for name in names:
        assert name in message


def test_cdk_app_prints_the_config_error_without_a_traceback(tmp_path: Any) -> None:
    """``cdk synth -c dimension=1000`` runs ``python3 app.py`` with the context in env."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(cdk_context(dimension="1000")),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error: config key 'dimension': 1000 is not a dimension" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing synthesized
